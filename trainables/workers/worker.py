"""The epoch machinery both training loops share (the search and the evaluation stage).

A loop builds its model and optimisers, then hands the rest to a :class:`Worker`: ``resume`` from
the latest readable checkpoint (``resume.py`` finds it), and at the end of every epoch ``record``:
a progress line, the epoch in MLflow (once, even across resumes), and the checkpoint with the
report to Ray Train. Each loop keeps only what is its own: the steps of an epoch and what it
measures.
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

import ray
import ray.train
import ray.train.torch
from sddarts.search_spaces.errors import StorageFullError
from sddarts.trainables.workers.checkpoint import save_state
from sddarts.trainables.sd_darts.distributed import worker_nodes
from sddarts.trainables.workers.resume import load_newest_readable
from sddarts.trainables.workers.progress import EpochProgress
from sddarts.trainables.workers.run_logger import RunLogger
from sddarts.trainables.workers.checkpoint import STATE_FILE
from sddarts.trainables.workers.trainer import progress
from sddarts.trainables.workers.ray_compat import quiet_worker_logs
from sddarts.trainables.sd_darts.seeding import rng_state, seed_everything, set_rng_state

PROGRESS_TAG = "sddarts.progress"  # where the run is: the latest progress line, or the epoch done
EPOCH_KEY = "epoch_time_s"  # logged once per epoch by every loop: which epochs MLflow already has


SHOWN = ("train_ce", "train_acc", "val_acc", "test_acc", "derived_val_acc", "discretization_gap", "hessian_eig",
         "param_free_share", "sd_loss", "epoch_time_s")  # what an epoch's progress line shows, where the loop has it


def shown(metrics: dict[str, Any]) -> str:
    """The metrics that matter of an epoch, as ``key=value`` pairs for its progress line."""
    return " ".join(f"{k}={metrics[k]:.4g}" for k in SHOWN if isinstance(metrics.get(k), (int, float)))


@dataclass
class Worker:
    """One Ray Train worker's part in a run: rank, device, and rank 0's MLflow logger."""

    name: str
    rank: int
    world: int
    device: torch.device
    log: RunLogger
    logged: set[int] = field(default_factory=set)  # epochs MLflow already holds (after a resume)
    last: dict[str, Any] = field(default_factory=dict)  # the latest epoch's metrics
    reported: bool = False
    progress_s: float = 30.0  # seconds between progress lines inside an epoch (0: none)
    epoch_times: list[float] = field(default_factory=list)  # of the epochs this attempt ran
    monitor: Any = None  # MLflow's system-metrics monitor (rank 0)

    @classmethod
    def start(cls, run: dict[str, Any], seed: int) -> "Worker":
        """``run``: {name, tracking_uri, run_id} from the driver, which created the MLflow run."""
        quiet_worker_logs()
        ctx = ray.train.get_context()
        rank = ctx.get_world_rank()
        seed_everything(seed)
        log = RunLogger(run["tracking_uri"], run["run_id"], enabled=rank == 0)
        if run.get("attempt_log"):  # a debugging aid ($SDDARTS_ATTEMPT_LOG on the driver): one line per worker start
            with open(run["attempt_log"], "a") as fh:
                fh.write(f"{run['name']} rank {rank}\n")
        device = ray.train.torch.get_device()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
        worker = cls(run["name"], rank, ctx.get_world_size(), device, log, progress_s=run.get("progress_s", 30.0))
        if rank == 0 and run.get("system_metrics_s"):
            worker.monitor = system_metrics_monitor(run, ctx.get_world_size())
        return worker

    def step_hook(self, epoch: int, epochs: int, images_per_step: int) -> EpochProgress | None:
        """The progress lines of ``epoch`` (rank 0; None elsewhere), also the run's
        ``sddarts.progress`` tag in MLflow."""
        if self.rank != 0 or not self.progress_s:
            return None

        def say(line: str) -> None:
            self.say(line)
            self.log.set_tags({PROGRESS_TAG: line})

        return EpochProgress(say, epoch, epochs, images_per_step * self.world, self.epoch_times, self.progress_s)

    def say(self, line: str) -> None:
        """A progress line on the driver's console, from rank 0 only."""
        if self.rank == 0:
            progress(f"[{self.name}] {line}")

    def resume(self, load: Callable[[dict[str, Any]], None], params: dict[str, Any],
               records: dict[str, Any] | None = None) -> int:
        """Restores the loop's state from the latest checkpoint with ``load``; returns the epochs
        done. A fresh run logs ``params`` and ``records`` (artifact file -> JSON object) instead."""
        nodes = worker_nodes(ray.get_runtime_context().get_node_id())
        self.log.set_tags({"train_workers": self.world, "train_nodes": nodes, "device": str(self.device)})
        self.say(f"{self.world} worker(s) on {nodes} node(s), device {self.device}")
        self.logged = self.log.logged_steps(EPOCH_KEY)  # an earlier attempt may have logged epochs it never checkpointed
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            if not self.logged:
                self.log.log_params(params)
                for name, obj in (records or {}).items():
                    self.log.log_dict(obj, name)
            return 0
        saved = load_newest_readable(checkpoint, self.device, self.say)
        load(saved)
        set_rng_state(saved["rng"])
        self.last = saved["metrics"]
        self.say(f"resumed after epoch {saved['epoch']}")
        return saved["epoch"]

    def record(self, epoch: int, epochs: int, metrics: dict[str, Any], state: dict[str, Any],
               extra: Callable[[RunLogger], None] | None = None) -> None:
        """Ends ``epoch``: a progress line; the epoch into MLflow unless it is there already,
        with ``extra`` for the loop's own artifacts; then the checkpoint and the report.

        MLflow hears of the epoch before the report, since Tune may stop a trial at any report.
        """
        self.say(f"epoch {epoch}/{epochs} {shown(metrics)}")
        if "epoch_time_s" in metrics:
            self.epoch_times.append(float(metrics["epoch_time_s"]))
        diverged = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if diverged:
            self.say(f"warning: {', '.join(diverged)} not finite at epoch {epoch}: the run is diverging "
                     "(lower --lr or --arch-lr)")
            self.log.set_tags({"diverged_at_epoch": epoch})
        if epoch not in self.logged:
            self.log.log_metrics(metrics, step=epoch)
            self.log.set_tags({PROGRESS_TAG: f"epoch {epoch}/{epochs} done"})
            if extra is not None and self.log.enabled:
                extra(self.log)
        with tempfile.TemporaryDirectory() as d:
            checkpoint = None
            if self.rank == 0:
                save_state({**state, "epoch": epoch, "metrics": metrics, "rng": rng_state()}, os.path.join(d, STATE_FILE))
                checkpoint = ray.train.Checkpoint.from_directory(d)
            try:
                ray.train.report(metrics, checkpoint=checkpoint)
            except OSError as exc:
                if exc.errno != errno.ENOSPC and "No space left on device" not in str(exc):
                    raise
                raise StorageFullError(f"no space left on the storage path while saving epoch {epoch}'s checkpoint "
                                       f"({' '.join(str(exc).split())[:160]}); the last complete checkpoint is kept: "
                                       f"free space, then rerun the command with --resume {self.name}") from None
        self.last, self.reported = metrics, True

    def finish(self) -> None:
        """Ends the worker's part: the system metrics' last samples; a run restored after its last
        epoch reports its final result again, so the caller gets it."""
        if self.monitor is not None:
            self.monitor.finish()
        if not self.reported and self.last:
            ray.train.report(self.last)


def system_metrics_monitor(run: dict[str, Any], world: int):
    """MLflow's system-metrics monitor of run ``run``, sampling this node (CPU, memory, disk,
    network; GPU where pynvml finds one) every ``run["system_metrics_s"]`` seconds, continuing
    its steps after a restart; started."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run["run_id"], sampling_interval=run["system_metrics_s"], resume_logging=True,
                                   tracking_uri=run["tracking_uri"])
    monitor.start()
    return monitor
