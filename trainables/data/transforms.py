"""Per-sample transforms and the in-memory image dataset the batch datasets load into."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:  # torchvision's import takes a second (it loads torch._dynamo): only where used
    from torchvision.transforms import v2


class Cutout:
    """Zeroes one ``size`` x ``size`` square at a random centre (DeVries & Taylor, 2017; as in DARTS)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        y, x = int(torch.randint(h, ())), int(torch.randint(w, ()))
        img = img.clone()
        img[..., max(0, y - self.size // 2): y + self.size // 2, max(0, x - self.size // 2): x + self.size // 2] = 0
        return img


class ImageArrayDataset(Dataset):
    """uint8 images ``(N, C, H, W)`` and labels, with a tensor transform per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]


def array_transform(size: int, mean, std, train: bool, cutout: int = 0, crop_flip: bool = True) -> v2.Transform:
    """DARTS' augmentation: random crop with ``size // 8``-pixel padding (4 at 32 px, as
    NAS-Bench-201's 2 at 16 px) and horizontal flip (unless ``crop_flip`` is False: they then run
    on the device, ``augment.crop_flip``), then normalise, then cutout."""
    from torchvision.transforms import v2

    steps: list = [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()] if train and crop_flip else []
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)
