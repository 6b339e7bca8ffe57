"""Running one search from the driver: an MLflow run around a Ray Train ``TorchTrainer``.

Used by ``sddarts search`` and by each trial of ``sddarts sweep``, so that a trial's MLflow run
is the search's own run.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sddarts.platform import tracking
from sddarts.search_spaces import Genotype
from sddarts.trainables.config import SearchConfig


@dataclass
class RunOptions:
    """Where a run goes; not part of the search config itself."""

    name: str = ""
    tracking_uri: str = ""
    experiment: str = tracking.DEFAULT_EXPERIMENT
    storage_path: str = "sddarts_runs"
    address: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        self.tracking_uri = tracking.resolve_tracking_uri(self.tracking_uri or None)
        if "://" not in self.storage_path:
            self.storage_path = str(Path(self.storage_path).expanduser().resolve())
        if not self.name:
            self.name = time.strftime("search-%Y%m%d-%H%M%S")


@dataclass
class SearchOutcome:
    name: str
    run_id: str
    experiment_id: str
    metrics: dict[str, Any] = field(default_factory=dict)
    genotype: Genotype | None = None


def check_resumable(opts: RunOptions) -> None:
    """Raises ConfigError when ``--resume NAME`` has no checkpoints under the storage path."""
    from sddarts.trainables.config import ConfigError

    if "://" in opts.storage_path:
        return  # remote storage: Ray Train checks it
    if not (Path(opts.storage_path) / opts.name).is_dir():
        raise ConfigError(f"resume: no run named {opts.name!r} under storage_path {opts.storage_path} "
                          "(pass the --storage-path it ran with)")


def search_tags(cfg: SearchConfig, kind: str = "search") -> dict[str, str]:
    return {"kind": kind, "space": cfg.space, "dataset": cfg.dataset, "seed": str(cfg.seed),
            "method": "sd-darts" if cfg.distills else "darts"}


class _Interrupted(KeyboardInterrupt):
    pass


def _raise_interrupt(signum, frame):  # SIGTERM (ray job stop, kill) ends the run like Ctrl-C
    raise _Interrupted()


def fit_tracked(trainer, uri: str, run_id: str, own_status: bool = True):
    """Fits a Ray Train trainer for MLflow run ``run_id``: on Ctrl-C or SIGTERM the run ends
    KILLED, on any error FAILED (with the error as a tag); the caller ends it FINISHED.
    With ``own_status=False`` (a sweep trial) the status is left to whoever stops the trial."""
    if not own_status:
        return trainer.fit()
    in_main = _in_main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if in_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return trainer.fit()
    except (KeyboardInterrupt, SystemExit) as exc:  # Ray's fit() aborts on Ctrl-C with SystemExit
        tracking.end_run(uri, run_id, "KILLED", {"end_reason": "interrupted"})
        raise KeyboardInterrupt() from exc
    except BaseException as exc:
        tracking.end_run(uri, run_id, "FAILED", {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def run_search(cfg: SearchConfig, opts: RunOptions, parent_run_id: str | None = None,
               callbacks: list | None = None, extra_tags: dict[str, str] | None = None,
               own_status: bool = True) -> SearchOutcome:
    """Runs (or resumes) one search and ends its MLflow run FINISHED, KILLED or FAILED.

    Ray must already be initialised. A run is resumed from the latest checkpoint under
    ``storage_path/name`` whenever one exists. A sweep trial passes ``own_status=False``: Tune
    may stop it at any report, so the sweep's callback ends its run instead.
    """
    from sddarts.trainables.search import make_search_trainer

    exp_id = tracking.experiment_id(opts.tracking_uri, opts.experiment)
    tags = {**search_tags(cfg), **(extra_tags or {})}
    run_id = tracking.open_run(opts.tracking_uri, exp_id, opts.name, tags, parent_run_id, opts.resume)
    run = {"name": opts.name, "tracking_uri": opts.tracking_uri, "run_id": run_id}
    trainer = make_search_trainer(cfg, run, opts.storage_path, callbacks)
    result = fit_tracked(trainer, opts.tracking_uri, run_id, own_status)
    metrics = dict(result.metrics or {})
    genotype = Genotype.from_json(metrics["genotype_json"]) if "genotype_json" in metrics else None
    if own_status:
        tracking.end_run(opts.tracking_uri, run_id, "FINISHED")
    return SearchOutcome(opts.name, run_id, exp_id, metrics, genotype)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
