"""The ``sddarts`` command line: search, sweep, evaluate, describe, compare, export, runs, ui.

Each command with logic of its own lives in its module (``search``, ``sweep``, ``compare``,
``evaluate``, ``export``, ``browse``) as ``add_parser`` and ``cmd_*``; they share one set-up path
(``launch.check_inputs``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from sddarts.platform import runs
from sddarts.trainables.config import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the flag (``-h`` shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"sddarts: error: {message} (see {self.prog} --help)\n")


def build_parser(help_preset: str = "") -> argparse.ArgumentParser:
    """The CLI's parser; ``help_preset``: the preset whose values the flags' help shows."""
    from sddarts.platform import browse, compare, evaluate, export, power, search, sweep

    parser = OneLineParser(prog="sddarts", description="Self-Distillation DARTS on Ray, tracked in MLflow.",
                           allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (search, sweep, evaluate, compare, power, export, browse):
        module.add_parser(sub, help_preset)
    u = sub.add_parser("ui", help="serve the MLflow UI for the tracking store on 127.0.0.1")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db")
    u.add_argument("--experiment", default=runs.DEFAULT_EXPERIMENT, help="the experiment whose page is printed")
    u.set_defaults(func=cmd_ui)
    for action in sub.choices.values():  # `--sd 1` is not `--sd-weight 1`
        action.allow_abbrev = False
    return parser


def cmd_ui(args: argparse.Namespace) -> int:
    """Serves the MLflow UI over the configured store, bound to 127.0.0.1."""
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"port must be in 1..65535 (got {args.port})")
    uri = runs.resolve_tracking_uri(args.tracking_uri or None)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking server already serves its UI: {uri}")
        return 0
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    home = f"http://127.0.0.1:{args.port}"
    exp = None if runs.store_missing(uri) else runs.client(uri).get_experiment_by_name(args.experiment)
    page = runs.ui_link(home, exp.experiment_id) if exp else home
    print(f"MLflow UI for {uri}: {page}  (Ctrl-C to stop)", flush=True)
    os.execv(mlflow_bin, [mlflow_bin, "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
                          "--port", str(args.port), "--workers", "1"])
    return 0


# Lines Ray forwards from its processes that tell a user nothing they can act on (Ray's own
# log filter, read when Ray starts; set the variables yourself to see everything).
RAY_NOISE = "|".join([
    r"PreemptionWatcher.*max_restarts",  # an error-level line on every Train run (ray-project/ray#53727)
    r"PYTHON worker processes have been started",  # fractional-CPU trials on a small machine
])
OUR_LINES = r"^\[[^\]]+\] (epoch \d+/\d+|resumed after|\d+ worker)"  # never folded as duplicates


def quiet_consoles() -> None:
    """Keeps the console to our progress lines, our summaries and warnings that matter."""
    import logging

    import optuna

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported, here and in workers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bar per genotype.json
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's new engine prints its start block even at verbose=0
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", RAY_NOISE)
    os.environ.setdefault("RAY_DEDUP_LOGS_ALLOW_REGEX", OUR_LINES)
    for name in ("mlflow", "alembic", "matplotlib"):  # store set-up and font-cache chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    from sddarts.platform import flags

    quiet_consoles()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(flags.preset_in(argv)).parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # one line, whichever process raised it; SDDARTS_DEBUG=1 for the traceback
        if os.environ.get("SDDARTS_DEBUG") == "1":
            raise
        code, line = error_line(exc)
        print(f"sddarts: error: {line}", file=sys.stderr)
        return code


def error_line(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line for an error: 2 and its message for bad input (whichever
    process raised it), 1 and ``the run failed: ...`` otherwise."""
    cause = root_cause(exc)
    if isinstance(cause, user_errors()):
        return 2, str(cause)
    detail = " ".join(f"{type(cause).__name__}: {cause}".split())
    return 1, (f"the run failed: {detail[:600]} (the MLflow run holds the error; "
               "SDDARTS_DEBUG=1 shows the traceback)")


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input: the message says what to change."""
    from sddarts.search_spaces.genotypes import GenotypeError
    from sddarts.trainables.data import DataError

    return ConfigError, runs.TrackingError, DataError, GenotypeError


def root_cause(exc: BaseException) -> BaseException:
    """The exception a worker, a Train controller or a Tune trial raised, under Ray's wrappers."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, user_errors()):
            return exc
        failures = getattr(exc, "worker_failures", None)
        inner = (next(iter(failures.values()), None) if failures else None) or getattr(exc, "controller_failure", None) \
            or getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc


if __name__ == "__main__":
    sys.exit(main())
