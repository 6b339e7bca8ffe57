"""The one place a TorchTrainer is built, and what a worker prints and passes on (its progress
lines, the driver's MLflow credentials)."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import ray.train

from sddarts.trainables.config import CommonConfig


def progress(line: str) -> None:
    """One progress line on the driver's console (Ray's patched ``print`` would log it twice)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def tracking_credentials() -> dict[str, str]:
    """The MLflow credentials in this process's environment, which Ray's workers do not inherit."""
    return {k: os.environ[k] for k in CREDENTIALS if os.environ.get(k)}


def make_trainer(loop: Callable[[dict], None], loop_config: dict[str, Any], cfg: CommonConfig, name: str,
                 storage_path: str, callbacks: list | None = None,
                 placement_group_cleaner: bool = True) -> "ray.train.torch.TorchTrainer":
    """A TorchTrainer for ``loop``. The Train run is named ``name``: fitting a trainer with the same
    name and ``storage_path`` again resumes from its latest checkpoint. ``placement_group_cleaner``:
    False where the driver's process ends with the run (``RunOptions.placement_group_cleaner``)."""
    from sddarts.trainables.workers.ray_compat import torch_trainer_class

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.gpus_per_worker:
        resources["GPU"] = cfg.gpus_per_worker
    return torch_trainer_class(placement_group_cleaner)(
        loop,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.gpus_per_worker > 0,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=name, storage_path=storage_path, callbacks=callbacks or [],
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=3),  # two unreadable ones still leave one
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),  # our progress lines, not Train's
            worker_runtime_env={"env_vars": tracking_credentials()} if tracking_credentials() else None,  # they log too
        ),
    )
