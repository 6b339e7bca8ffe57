"""What the consoles of Ray 2.60, Ray Tune and MLflow 3.17 print that a user can do nothing about,
kept off the driver's console: our progress lines, summaries and the warnings that matter stay.
Each setting is an environment variable or a logger level, read when the library starts; set the
variables yourself to see everything."""

from __future__ import annotations

import logging
import os

# Lines Ray forwards from its processes (Ray's own log filter, read when Ray starts)
RAY_NOISE = "|".join([
    r"PreemptionWatcher.*max_restarts",  # Ray 2.60: an error-level line on every Train run (ray-project/ray#53727)
    r"PYTHON worker processes have been started",  # fractional-CPU trials on a small machine
])
OUR_LINES = r"^\[[^\]]+\] (epoch \d+/\d+|resumed after|\d+ worker)"  # never folded as duplicates


def quiet_consoles() -> None:
    """Keeps the console to our progress lines, our summaries and warnings that matter."""
    import optuna

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported, here and in workers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bar per genotype.json
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's new engine prints its start block even at verbose=0
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", RAY_NOISE)
    os.environ.setdefault("RAY_DEDUP_LOGS_ALLOW_REGEX", OUR_LINES)
    for name in ("mlflow", "alembic", "matplotlib"):  # store set-up and font-cache chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
