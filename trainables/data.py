"""Datasets: scikit-learn's bundled digits (the default, no download) and CIFAR-10/100.

CIFAR is read straight from CIFAR's own python pickle batches, so a folder with a few hand-written
batches loads exactly like the real one; torchvision only downloads it, and only with ``download``.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset
from torchvision.transforms import v2


class DataError(ValueError):
    """A dataset that is missing or malformed. The message says how to fix it."""


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's shape and the normalisation its images get: an image as a user has it, float in
    [0, 1] (pixel / 255; digits: pixel / 16), enters the network as ``(x - mean) / std``."""

    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


INFO = {
    "digits": DatasetInfo(1, 10, 8, (0.305,), (0.375,)),
    "cifar10": DatasetInfo(3, 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo(3, 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CIFAR_MEAN = {name: INFO[name].mean for name in ("cifar10", "cifar100")}
CIFAR_STD = {name: INFO[name].std for name in ("cifar10", "cifar100")}
CIFAR_LAYOUT = {  # folder, training files, test file, label key
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels"),
}


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


def _digits(train: bool) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))  # fixed 80/20 train/test split
    cut = int(0.8 * len(order))
    idx = order[:cut] if train else order[cut:]
    x = torch.tensor(bunch.images[idx], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - INFO["digits"].mean[0]) / INFO["digits"].std[0]
    return TensorDataset(x, torch.tensor(bunch.target[idx], dtype=torch.long))


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            entry = pickle.load(fh, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[label_key], dtype=np.int64)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pickle, key and shape errors all mean the same to the user
        raise DataError(f"{path} is not a CIFAR python batch ({type(exc).__name__}: {exc})") from exc
    if len(data) != len(labels):
        raise DataError(f"{path} holds {len(data)} images but {len(labels)} labels")
    return data, labels


def _download(name: str, root: Path) -> None:
    """Downloads CIFAR into ``root``; a failed download removes the folders it created."""
    from torchvision import datasets

    created = [p for p in [root, *root.parents] if not p.exists()][::-1]
    root.mkdir(parents=True, exist_ok=True)
    try:
        (datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100)(str(root), download=True)
    except BaseException:
        for folder in reversed(created):  # leave nothing behind; a partial archive goes too
            shutil.rmtree(folder, ignore_errors=True)
        raise


def load_cifar_arrays(name: str, data_dir: str, train: bool, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels of one CIFAR split, read from its python batches."""
    folder, train_files, test_file, label_key = CIFAR_LAYOUT[name]
    root = Path(data_dir).expanduser()
    files = [root / folder / f for f in (train_files if train else [test_file])]
    if download and not all(f.is_file() for f in files):
        _download(name, root)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"data_dir {str(root)!r} has no {name} batches (missing {missing[0]}); "
                        f"pass --download to fetch them, or point --data-dir at the folder holding {folder}/")
    parts = [_read_batch(f, label_key) for f in files]
    empty = [str(f) for f, part in zip(files, parts) if len(part[1]) == 0]
    if empty:
        raise DataError(f"{empty[0]} holds no images")
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    classes = INFO[name].num_classes
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"{name} labels must be in [0, {classes - 1}], found {int(labels.min())}..{int(labels.max())}")
    return images, labels


def cifar_transform(name: str, train: bool, cutout: int = 0, crop_flip: bool = True) -> v2.Transform:
    """DARTS' augmentation: random crop with 4-pixel padding and horizontal flip (unless
    ``crop_flip`` is False: they then run on the device, ``augment.crop_flip``), then normalise."""
    steps: list = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if train and crop_flip else []
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR_MEAN[name], CIFAR_STD[name])]
    if train and cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


def load_dataset(name: str, data_dir: str = "", train: bool = True, augment: bool = True,
                 cutout: int = 0, download: bool = False, crop_flip: bool = True) -> Dataset:
    """One split of a dataset, ready for a DataLoader (``crop_flip`` False: CIFAR's crop and flip
    are left to the device)."""
    if name == "digits":
        return _digits(train)
    if name not in CIFAR_LAYOUT:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(INFO)}")
    images, labels = load_cifar_arrays(name, data_dir, train, download)
    return ImageArrayDataset(images, labels, cifar_transform(name, train and augment, cutout, crop_flip))


@dataclass(frozen=True)
class SearchSplits:
    """The search's three disjoint parts of the training split."""

    w_train: Dataset  # trains the network weights w
    alpha_train: Dataset  # trains alpha (DARTS' "valid" split)
    holdout: Dataset  # neither update sees it: val_*, derived_val_acc, sharpness, proxy_acc


def holdout_indices(n: int, holdout_portion: float, seed: int) -> tuple[list[int], list[int]]:
    """(held-out, rest) indices of an ``n``-image training split, shuffled with ``seed``: the same
    for the search and for the proxy retrain of its genotype."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    held = int(round(holdout_portion * n))
    if held == 0 or held == n:
        raise DataError(f"holdout_portion {holdout_portion} leaves an empty split of the {n} training images")
    return order[:held], order[held:]


def search_splits(name: str, data_dir: str, train_portion: float, holdout_portion: float, seed: int,
                  download: bool = False, crop_flip: bool = True) -> SearchSplits:
    """``holdout_portion`` of the training split is held out (without augmentation); of the rest,
    ``train_portion`` trains w and the remainder trains alpha (DARTS' split)."""
    augmented = load_dataset(name, data_dir, train=True, download=download, crop_flip=crop_flip)
    plain = load_dataset(name, data_dir, train=True, augment=False)
    held, rest = holdout_indices(len(augmented), holdout_portion, seed)
    cut = int(round(train_portion * len(rest)))
    if cut == 0 or cut == len(rest):
        raise DataError(f"train_portion {train_portion} leaves an empty split of the {len(rest)} images not held out")
    return SearchSplits(Subset(augmented, rest[:cut]), Subset(augmented, rest[cut:]), Subset(plain, held))


def train_and_measure_splits(name: str, data_dir: str, holdout_portion: float, seed: int, cutout: int = 0,
                             download: bool = False, crop_flip: bool = True) -> tuple[Dataset, Dataset]:
    """What a from-scratch training of a genotype trains on and measures on. With
    ``holdout_portion`` 0: the training split and the test split (the evaluation stage). Above 0:
    the search's w- and alpha-data together, and its held-out split (a proxy retrain)."""
    augmented = load_dataset(name, data_dir, train=True, cutout=cutout, download=download, crop_flip=crop_flip)
    if holdout_portion == 0:
        return augmented, load_dataset(name, data_dir, train=False)
    held, rest = holdout_indices(len(augmented), holdout_portion, seed)
    return Subset(augmented, rest), Subset(load_dataset(name, data_dir, train=True, augment=False), held)


def check_available(name: str, data_dir: str, download: bool = False) -> int:
    """Reads every file of the dataset on the driver (downloading CIFAR first with ``download``),
    so that a missing, malformed or empty file fails here with one line rather than in the
    workers. Returns the number of training images."""
    if name == "digits":
        return len(_digits(True))
    folder, train_files, test_file, _ = CIFAR_LAYOUT[name]
    root = Path(data_dir).expanduser()
    if download and not all((root / folder / f).is_file() for f in [*train_files, test_file]):
        try:
            _download(name, root)
        except Exception as exc:  # offline, unwritable folder, a bad archive
            raise DataError(f"could not download {name} into data_dir {str(root)!r} ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}); fetch it by hand or point --data-dir at a copy") from None
    load_cifar_arrays(name, data_dir, train=False)
    return len(load_cifar_arrays(name, data_dir, train=True)[1])


def check_batches(n_train: int, batch_size: int, num_workers: int, parts: dict[str, float]) -> None:
    """Raises DataError when a worker's share of a split is smaller than one batch (the loaders drop
    incomplete batches, so the worker would run no step). ``parts``: split name -> share of the
    ``n_train`` training images."""
    for split, share in parts.items():
        per_worker = int(share * n_train) // num_workers
        if per_worker < batch_size:
            raise DataError(f"batch_size {batch_size} is larger than a worker's share of the {split} split "
                            f"({int(share * n_train)} images / {num_workers} workers = {per_worker}); "
                            "lower --batch-size or --num-workers")
