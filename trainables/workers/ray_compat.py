"""What sddarts does in every Ray worker process to work around Ray 2.60's console noise.

Installed as the job's ``worker_process_setup_hook`` (``platform/cluster.connect``), so it runs in
the Train controllers and workers and the Tune trials alike.
"""

from __future__ import annotations

import logging

# Ray 2.60, ray/train/v2/_internal/execution/scaling_policy/autoscaling_coordinator_client.py: a
# resource request that takes over 5 s (a busy CPU, say two sddarts commands on one 2-core machine)
# logs an 18-line traceback that its own message calls "safe to ignore". Kept as one line.
TRANSIENT = {"ray.train.v2._internal.execution.scaling_policy.autoscaling_coordinator_client": "Failed to send resource request"}


class WithoutTraceback(logging.Filter):
    """Drops the traceback of a record whose message starts with ``prefix`` (the line stays)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(self.prefix):
            record.exc_info, record.exc_text = None, None
        return True


def worker_setup() -> None:
    """The worker process setup hook: one line for Ray's transient warnings."""
    for name, prefix in TRANSIENT.items():
        logging.getLogger(name).addFilter(WithoutTraceback(prefix))


def quiet_worker_logs() -> None:
    """Chatter a worker would forward to the driver's console: MLflow's store set-up, matplotlib's
    font cache, and Ray Train's log of every report (metrics and all), which goes to a logger named
    after its file path, outside the trainer's LoggingConfig. MLflow's import sets its loggers to
    INFO, so it is imported first (the worker logs through it anyway)."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:  # Ray 2.60: a private module, whose logger is named after its file path
        from ray.train.v2._internal.execution import context as train_context
    except ImportError:
        return
    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)


def torch_trainer_class(placement_group_cleaner: bool = True) -> type:
    """Ray 2.60's ``TorchTrainer``, less two helper actors (one process and 1.3-1.7 CPU-seconds
    each) where sddarts does not need them: the ``DatasetManager`` it starts for every run even when
    no Ray Dataset is passed (sddarts' workers read their data themselves), and, with
    ``placement_group_cleaner=False``, the detached ``PlacementGroupCleaner`` that frees the
    workers' placement group if the controller dies under a live driver (Ray frees it anyway when
    the driver's job ends). Where the private callbacks have moved, the trainer is Ray's own."""
    from ray.train.torch import TorchTrainer

    try:  # Ray 2.60: private modules
        from ray.train.v2._internal.callbacks import DatasetsCallback
        from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
    except ImportError:
        return TorchTrainer
    unneeded = () if placement_group_cleaner else (PlacementGroupCleanerCallback,)

    class WithoutIdleHelpers(TorchTrainer):
        def _create_default_callbacks(self):
            dropped = unneeded if self.datasets else (*unneeded, DatasetsCallback)
            return [c for c in super()._create_default_callbacks() if not isinstance(c, dropped)]

    return WithoutIdleHelpers
