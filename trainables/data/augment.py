"""DARTS' CIFAR augmentation (random crop with ``size // 8``-pixel padding, 4 at 32 px; horizontal
flip) on a whole batch on its device, for ``augment_on_device``: the per-sample transforms then leave the loader workers,
and the batch never goes back to the host. Padding holds a black pixel, as torchvision's
``RandomCrop(32, padding=4)`` on the uint8 image does before normalisation."""

from __future__ import annotations

import torch

from sddarts.trainables.data.datasets import DatasetInfo


def crop_flip(x: torch.Tensor, fill: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W, normalised) cropped at a random offset of its ``pad``-padded
    self and flipped left-right with probability 1/2. ``fill``: the normalised black pixel (C,)."""
    n, c, h, w = x.shape
    padded = fill.to(x).view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad:pad + h, pad:pad + w] = x
    top = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    left = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    rows = (top + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (left + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    flip = torch.rand(n, device=x.device) < 0.5
    cols = torch.where(flip.view(n, 1, 1, 1), cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols].contiguous(memory_format=torch.preserve_format)


def black_pixel(info: DatasetInfo) -> torch.Tensor:
    """The normalised value of a black pixel in the dataset's channels."""
    mean, std = torch.tensor(info.mean), torch.tensor(info.std)
    return -mean / std
