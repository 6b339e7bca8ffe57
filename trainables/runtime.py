"""Worker plumbing shared by the search and evaluation loops, and the one place a TorchTrainer
is built."""

from __future__ import annotations

import logging
import os
import random
import sys
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

import ray.train
from sddarts.trainables.config import CommonConfig

STATE_FILE = "state.pt"


def quiet_worker_logs() -> None:
    """Chatter a worker would forward to the driver's console: MLflow's store set-up, matplotlib's
    font cache, and Ray Train's log of every report (metrics and all), which goes to a logger named
    after its file path, outside the trainer's LoggingConfig."""
    for name in ("mlflow", "alembic", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from ray.train.v2._internal.execution import context as train_context
    except ImportError:
        return
    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)


def progress(line: str) -> None:
    """One progress line on the driver's console (Ray's patched ``print`` would log it twice)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def tracking_credentials() -> dict[str, str]:
    """The MLflow credentials in this process's environment, which Ray's workers do not inherit."""
    return {k: os.environ[k] for k in CREDENTIALS if os.environ.get(k)}


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    name, keys, *rest = rng["numpy"]  # keys come back from a checkpoint as a tensor
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(tuple(tuple(v) if isinstance(v, list) else v for v in rng["python"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


class MeasureBatches(Sampler[list[int]]):
    """The batches of a split that is measured, not trained on, for any number of workers: the
    split is cut once into batches of ``batch_size`` (a partial last batch joins the one before,
    so no batch's BatchNorm statistics come from a handful of samples) and batch k goes to worker
    k % world. Every sample is counted once, with no padding, and each batch is the same on 1 or
    N workers, so summed figures agree up to floating-point order."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int):
        batches = [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]
        if len(batches) > 1 and len(batches[-1]) < batch_size:
            short = batches.pop()
            batches[-1] = batches[-1] + short
        self.batches = batches[rank::world]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(ds: Dataset, cfg: CommonConfig, rank: int, world: int, shuffle: bool = True,
                stream: int = 0) -> DataLoader:
    """A loader over this worker's part of ``ds``. Training (``shuffle``): a shard reshuffled per
    epoch (``sampler.set_epoch``) from the config's seed, incomplete batches dropped; loaders of
    different ``stream`` draw independent orders (seeds ``seed + stream * 2**32``, so no epoch of
    one stream repeats another's). Measuring: ``MeasureBatches``, every sample once."""
    workers = cfg.dataloader_workers
    common = dict(num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
    if not shuffle:
        return DataLoader(ds, batch_sampler=MeasureBatches(len(ds), cfg.batch_size, rank, world), **common)
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed + stream * 2**32,
                                 drop_last=True)
    return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, **common)


def autocast(cfg: CommonConfig, device: torch.device, enabled: bool = True):
    """The forward's autocast context: bf16 with ``precision bf16`` (and ``enabled``), else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and cfg.precision == "bf16")


def to_device(tensors, device: torch.device, channels_last: bool = False,
              augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
    """A batch on ``device`` (images in NHWC with ``channels_last``, then ``augment``ed there)."""
    fmt = torch.channels_last if channels_last else torch.preserve_format
    out = [t.to(device, non_blocking=True, memory_format=fmt) if t.dim() == 4 else t.to(device, non_blocking=True)
           for t in tensors]
    if augment is not None:
        out[0] = augment(out[0])
    return tuple(out)


def device_augment(cfg: CommonConfig, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The batch datasets' crop and flip for a training batch on ``device`` with ``augment_on_device``, else None."""
    if not cfg.augment_on_device:
        return None
    from sddarts.trainables.augment import black_pixel, crop_flip
    from sddarts.trainables.data import DataSource, dataset_info

    info = dataset_info(DataSource.of(cfg))
    fill = black_pixel(info).to(device)
    return lambda x: crop_flip(x, fill, pad=info.image_size // 8)


def make_trainer(loop: Callable[[dict], None], loop_config: dict[str, Any], cfg: CommonConfig, name: str,
                 storage_path: str, callbacks: list | None = None) -> "ray.train.torch.TorchTrainer":
    """A TorchTrainer for ``loop``. The Train run is named ``name``: fitting a trainer with the same
    name and ``storage_path`` again resumes from its latest checkpoint."""
    from ray.train.torch import TorchTrainer

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.gpus_per_worker:
        resources["GPU"] = cfg.gpus_per_worker
    return TorchTrainer(
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
