"""Datasets stored as python pickle batches of uint8 images: CIFAR-10/100 as CIFAR ships them,
NAS-Bench-201's ``cifar10-valid`` (CIFAR-10's training batches cut by the benchmark's
``cifar-split.txt``) and ``ImageNet16-120`` (downsampled ImageNet's 16x16 batches, the first 120
classes). Files are read as they are, so a folder of a few hand-written batches loads exactly like
the real one; torchvision only downloads CIFAR, and only with ``download``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from sddarts.trainables.data import safe_pickle
from sddarts.search_spaces.errors import DataError


CIFAR_LAYOUT = {  # folder, training files, test file, label key
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels"),
}
CLASSES = {"cifar10": 10, "cifar100": 100, "cifar10-valid": 10, "ImageNet16-120": 120}
NB201_SPLIT = "cifar-split.txt"  # NAS-Bench-201's halves of CIFAR-10's training set, beside cifar-10-batches-py/
IMAGENET16 = "ImageNet16"  # folder of train_data_batch_1..10 and val_data (labels 1..1000)
IMAGENET16_FILES = ([f"train_data_batch_{i}" for i in range(1, 11)], "val_data")
BATCH_DATASETS = tuple(CLASSES)


def _read_batch(path: Path, label_key: bytes, side: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        entry = safe_pickle.load(path, encoding="bytes")  # refuses any pickled callable: data runs no code
        entry = {k.encode() if isinstance(k, str) else k: v for k, v in entry.items()}
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, side, side)
        labels = np.asarray(entry[label_key], dtype=np.int64)
    except (FileNotFoundError, safe_pickle.UnsafePickleError):
        raise
    except Exception as exc:  # pickle, key and shape errors all mean the same to the user
        kind = "CIFAR" if side == 32 else f"{side}x{side} ImageNet"
        raise DataError(f"{path} is not a {kind} python batch ({type(exc).__name__}: {exc})") from exc
    if len(data) != len(labels):
        raise DataError(f"{path} holds {len(data)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{path} holds no images")
    return data, labels


def download(name: str, root: Path) -> None:
    """Downloads CIFAR into ``root``; a failed download removes the folders it created."""
    from torchvision import datasets

    created = [p for p in [root, *root.parents] if not p.exists()][::-1]
    root.mkdir(parents=True, exist_ok=True)
    try:
        (datasets.CIFAR100 if name == "cifar100" else datasets.CIFAR10)(str(root), download=True)
    except BaseException:
        for folder in reversed(created):  # leave nothing behind; a partial archive goes too
            shutil.rmtree(folder, ignore_errors=True)
        raise


def files_of(name: str, data_dir: str, train: bool) -> list[Path]:
    """The batch files one split of ``name`` is read from."""
    root = Path(data_dir).expanduser()
    if name == "ImageNet16-120":
        folder = root / IMAGENET16 if (root / IMAGENET16).is_dir() else root
        return [folder / f for f in (IMAGENET16_FILES[0] if train else [IMAGENET16_FILES[1]])]
    folder, train_files, test_file, _ = CIFAR_LAYOUT["cifar10" if name == "cifar10-valid" else name]
    return [root / folder / f for f in (train_files if train or name == "cifar10-valid" else [test_file])]


def _concat(files: list[Path], label_key: bytes, side: int) -> tuple[np.ndarray, np.ndarray]:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(missing[0])
    parts = [_read_batch(f, label_key, side) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def nb201_halves(data_dir: str, n: int) -> dict[str, list[int]]:
    """NAS-Bench-201's ``cifar-split.txt`` (AutoDL's config format, ``{"train": ["int", [...]],
    "valid": ["int", [...]]}``): two disjoint index lists over CIFAR-10's ``n`` training images."""
    path = Path(data_dir).expanduser() / NB201_SPLIT
    if not path.is_file():
        raise DataError(f"cifar10-valid needs NAS-Bench-201's split file {path} (configs/nas-benchmark/{NB201_SPLIT} "
                        "in D-X-Y/AutoDL-Projects), beside cifar-10-batches-py/")
    try:
        raw = json.loads(path.read_text())
        halves = {k: [int(i) for i in (raw[k][1] if isinstance(raw[k][0], str) else raw[k])] for k in ("train", "valid")}
    except Exception as exc:
        raise DataError(f"{path} is not NAS-Bench-201's split file ({type(exc).__name__}: {exc}); it holds "
                        '{"train": ["int", [indices]], "valid": ["int", [indices]]}') from None
    every = halves["train"] + halves["valid"]
    if not every or min(every) < 0 or max(every) >= n or len(set(every)) < len(every):
        raise DataError(f"{path}: train and valid must be disjoint indices in [0, {n - 1}] of CIFAR-10's training images")
    return halves


def load_arrays(name: str, data_dir: str, train: bool, download_missing: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images ``(N, 3, H, W)`` and labels of one split of a batch dataset."""
    files = files_of(name, data_dir, train)
    if download_missing and name in CIFAR_LAYOUT and not all(f.is_file() for f in files):
        download(name, Path(data_dir).expanduser())
    try:
        if name == "ImageNet16-120":
            images, labels = _concat(files, b"labels", 16)
            keep = (labels >= 1) & (labels <= 120)  # the benchmark's first 120 classes; labels are 1-based
            images, labels = images[keep], labels[keep] - 1
            if len(labels) == 0:
                raise DataError(f"{files[0].parent} holds no image of the first 120 classes (labels 1..120)")
        else:
            images, labels = _concat(files, CIFAR_LAYOUT["cifar10" if name == "cifar10-valid" else name][3], 32)
    except FileNotFoundError as exc:
        hint = ("the folder holding ImageNet16/ (train_data_batch_1..10, val_data)" if name == "ImageNet16-120"
                else f"the folder holding {CIFAR_LAYOUT['cifar10' if name == 'cifar10-valid' else name][0]}/")
        extra = "pass --download to fetch them, or " if name in CIFAR_LAYOUT else ""
        raise DataError(f"data_dir {data_dir!r} has no {name} batches (missing {exc.args[0]}); "
                        f"{extra}point --data-dir at {hint}") from None
    if name == "cifar10-valid":
        idx = nb201_halves(data_dir, len(labels))["train" if train else "valid"]
        images, labels = images[idx], labels[idx]
    classes = CLASSES[name]
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"{name} labels must be in [0, {classes - 1}], found {int(labels.min())}..{int(labels.max())}")
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
