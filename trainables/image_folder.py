"""Your own images in torchvision's ``ImageFolder`` layout: ``DIR/train/<class>/*`` and
``DIR/val/<class>/*`` (or ``DIR/test/``) for the test split.

Every image is resized (shorter side to ``image_size``) and center-cropped to ``image_size`` square;
training images are then randomly cropped from a copy padded by ``image_size // 8`` pixels and
flipped left-right (DARTS' CIFAR recipe at 32 px). Grey images (PIL modes L, I, F, 1, LA) have one
channel and every other mode three (RGB); a folder mixing them is refused. ``inspect`` reads every
image once on the driver: it names the first file that is unreadable or truncated and computes the
channel statistics of the training images, so the workers start on a folder known to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from sddarts.trainables.batches import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
TEST_SPLITS = ("val", "test")
DEFAULT_SIZE = 32
GREY_MODES = ("L", "I", "I;16", "F", "1", "LA")


@dataclass(frozen=True)
class Folder:
    """The classes of an image folder and the files of its two splits, each ``(path, label)``."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[tuple[str, int], ...]
    test: tuple[tuple[str, int], ...]


def _class_files(split: Path) -> dict[str, list[str]]:
    folders = sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {p.name: sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS
                           and not f.name.startswith(".")) for p in folders}


def scan(data_dir: str) -> Folder:
    """The folder's classes (sorted folder names of ``train/``) and files; raises DataError on a
    missing split, a class without images, or class lists that differ between the splits."""
    root = Path(data_dir).expanduser()
    if not (root / "train").is_dir():
        raise DataError(f"data_dir {str(root)!r} has no train/ folder; an image folder holds train/<class>/* and "
                        "val/<class>/* (or test/<class>/*)")
    test_dir = next((root / s for s in TEST_SPLITS if (root / s).is_dir()), None)
    if test_dir is None:
        raise DataError(f"data_dir {str(root)!r} has no val/ or test/ folder for the test split (val/<class>/*)")
    train, test = _class_files(root / "train"), _class_files(test_dir)
    if not train:
        raise DataError(f"{root / 'train'} holds no class folders (train/<class>/*)")
    for split, files in ((root / "train", train), (test_dir, test)):
        empty = [c for c, fs in files.items() if not fs]
        if empty:
            raise DataError(f"class {empty[0]!r} in {split} holds no images ({', '.join(EXTENSIONS)})")
    missing, extra = sorted(set(train) - set(test)), sorted(set(test) - set(train))
    if missing or extra:
        which = f"class {missing[0]!r} is missing from {test_dir}" if missing else f"class {extra[0]!r} of {test_dir} is not in train/"
        raise DataError(f"{which}: both splits must hold the same class folders")
    classes = tuple(train)
    label = {c: i for i, c in enumerate(classes)}
    return Folder(root, classes, tuple((f, label[c]) for c in classes for f in train[c]),
                  tuple((f, label[c]) for c in classes for f in test[c]))


def open_image(path: str, channels: int | None = None):
    """The PIL image at ``path``, fully decoded, in its channels' mode (``L`` or ``RGB``)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            grey = img.mode in GREY_MODES
            img = img.convert("L" if grey else "RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for a bad file
        raise DataError(f"image {path} is unreadable or truncated ({type(exc).__name__}: {exc}); "
                        "remove or replace it") from None
    if channels is not None and (1 if grey else 3) != channels:
        raise DataError(f"image {path} has {1 if grey else 3} channel(s) but the folder's first image has "
                        f"{channels}: convert the folder to one kind (all RGB or all grey)")
    return img


def square(size: int) -> v2.Transform:
    """Shorter side to ``size``, then the center ``size`` x ``size`` square."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


@dataclass(frozen=True)
class Inspection:
    folder: Folder
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def inspect(data_dir: str, image_size: int) -> Inspection:
    """Opens every image of both splits (naming the first bad one) and returns the channel
    statistics of the training images as they enter the network (resized, cropped, in [0, 1])."""
    folder = scan(data_dir)
    first = open_image(folder.train[0][0])
    channels = len(first.getbands())
    shape, total, sq, n = square(image_size), np.zeros(channels), np.zeros(channels), 0
    for path, _ in folder.train:
        x = v2.functional.to_dtype(shape(v2.functional.to_image(open_image(path, channels))), torch.float64, scale=True)
        total += x.sum(dim=(1, 2)).numpy()
        sq += (x * x).sum(dim=(1, 2)).numpy()
        n += x.shape[1] * x.shape[2]
    for path, _ in folder.test:
        open_image(path, channels)
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))
    return Inspection(folder, channels, tuple(round(float(m), 4) for m in mean),
                      tuple(round(max(float(s), 1e-3), 4) for s in std))


class FolderImages(Dataset):
    """``(path, label)`` samples decoded per item (in the loader workers) into tensors."""

    def __init__(self, samples: tuple[tuple[str, int], ...], channels: int, transform: v2.Transform):
        self.samples, self.channels, self.transform = samples, channels, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(v2.functional.to_image(open_image(path, self.channels))), label


def folder_transform(size: int, mean, std, train: bool, cutout=None) -> v2.Transform:
    """The documented policy: ``square(size)``, then for training a padded random crop and a flip."""
    steps: list = [square(size)]
    if train:
        steps += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if cutout is not None:
        steps.append(cutout)
    return v2.Compose(steps)
