"""Loaders over a worker's share of a split, and batches onto the device (with the crop and flip
there, where ``augment_on_device`` asks for it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

if TYPE_CHECKING:
    from sddarts.trainables.config import CommonConfig


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
    from sddarts.trainables.data.augment import black_pixel, crop_flip
    from sddarts.trainables.data.datasets import DataSource, dataset_info

    info = dataset_info(DataSource.of(cfg))
    fill = black_pixel(info).to(device)
    return lambda x: crop_flip(x, fill, pad=info.image_size // 8)
