"""Your own images in torchvision's ``ImageFolder`` layout: ``DIR/train/<class>/*`` and
``DIR/val/<class>/*`` (or ``DIR/test/``) for the test split.

Every image is resized (shorter side to ``image_size``) and center-cropped to ``image_size`` square;
training images are then randomly cropped from a copy padded by ``image_size // 8`` pixels and
flipped left-right (DARTS' CIFAR recipe at 32 px). Images are converted as torchvision's loaders
do: the folder is RGB when any image is colour and grey when all are, and each image is converted
to that kind (grey, RGBA, LA, palette, CMYK...; alpha is dropped). 16-bit grey images are scaled by
their real range (0..65535 to 0..255), never clipped; 32-bit float images are refused. A folder
needs two classes or more. ``inspect`` reads every image once on the driver: it names the first
file that is unreadable or truncated, counts the conversions and computes the channel statistics
of the training images, so the workers start on a folder known to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:  # torchvision's import takes a second (it loads torch._dynamo): only where used
    from torchvision.transforms import v2

from sddarts.search_spaces.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
TEST_SPLITS = ("val", "test")
DEFAULT_SIZE = 32
GREY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "1", "LA")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # more than 8 bits per pixel: scaled, not clipped


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
    if len(train) < 2:
        raise DataError(f"{root / 'train'} holds one class ({next(iter(train))!r}): a classifier needs 2 class folders "
                        "or more (train/<class>/*), or every image is trivially right")
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


def _unreadable(path: str, exc: Exception) -> DataError:
    return DataError(f"image {path} is unreadable or truncated ({type(exc).__name__}: {exc}); remove or replace it")


def image_mode(path: str) -> str:
    """The PIL mode of the image at ``path``, read from its header."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.mode
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for a bad file
        raise _unreadable(path, exc) from None


def _eight_bit(img, path: str):
    """A wide grey image scaled by its real range into an 8-bit ``L`` image: 16-bit (and 32-bit
    integer images whose values fit 16 bits) by 65535, 32-bit integers within 0..255 by 255."""
    from PIL import Image

    if img.mode == "F":
        raise DataError(f"image {path} has 32-bit float pixels, which have no fixed range: save it with 8 or 16 bits "
                        "per channel")
    if img.mode not in WIDE_MODES:
        return img
    pixels = np.asarray(img).astype(np.int64)
    top = 255 if img.mode == "I" and pixels.max(initial=0) <= 255 else 65535
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 65535:
        raise DataError(f"image {path} has 32-bit pixels outside 0..65535: save it with 8 or 16 bits per channel")
    return Image.fromarray(np.round(pixels * (255 / top)).astype(np.uint8), "L")


def open_image(path: str, channels: int | None = None):
    """The PIL image at ``path``, fully decoded and converted to ``L`` (``channels`` 1) or ``RGB``
    (3; default: its own kind), wide grey images scaled to 8 bits by their range."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            img = _eight_bit(img, path)
            grey = img.mode in GREY_MODES
            target = ("L" if grey else "RGB") if channels is None else ("L" if channels == 1 else "RGB")
            return img.convert(target)  # a copy, also when the mode is already right (the file closes)
    except DataError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for a bad file
        raise _unreadable(path, exc) from None


def square(size: int) -> v2.Transform:
    """Shorter side to ``size``, then the center ``size`` x ``size`` square."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


@dataclass(frozen=True)
class Inspection:
    folder: Folder
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    converted: int = 0  # images not already in the folder's mode (L or RGB)


def inspect(data_dir: str, image_size: int) -> Inspection:
    """Opens every image of both splits (naming the first bad one) and returns the folder's kind
    (RGB if any image is colour), how many images are converted to it, and the channel statistics
    of the training images as they enter the network (resized, cropped, in [0, 1])."""
    from torchvision.transforms import v2

    folder = scan(data_dir)
    modes = [image_mode(path) for path, _ in folder.train + folder.test]
    channels = 1 if all(m in GREY_MODES for m in modes) else 3
    converted = sum(m != ("L" if channels == 1 else "RGB") for m in modes)
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
                      tuple(round(max(float(s), 1e-3), 4) for s in std), converted)


class FolderImages(Dataset):
    """``(path, label)`` samples decoded per item (in the loader workers) into tensors."""

    def __init__(self, samples: tuple[tuple[str, int], ...], channels: int, transform: v2.Transform):
        from torchvision.transforms.v2.functional import to_image

        self.samples, self.channels, self.transform, self.to_image = samples, channels, transform, to_image

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(self.to_image(open_image(path, self.channels))), label


def folder_transform(size: int, mean, std, train: bool, cutout=None) -> v2.Transform:
    """The documented policy: ``square(size)``, then for training a padded random crop and a flip."""
    from torchvision.transforms import v2

    steps: list = [square(size)]
    if train:
        steps += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if cutout is not None:
        steps.append(cutout)
    return v2.Compose(steps)
