"""Datasets: scikit-learn's bundled digits (the default, no download), CIFAR-10/100, NAS-Bench-201's
``cifar10-valid`` and ``ImageNet16-120`` (``batches.py``), and your own image folder
(``image_folder.py``). A :class:`DataSource` names one; every loop and check takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from sddarts.trainables.data import batches, image_folder
from sddarts.search_spaces.errors import DataError
from sddarts.trainables.data.transforms import Cutout, ImageArrayDataset, array_transform


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's shape and the normalisation its images get: an image as a user has it, float in
    [0, 1] (pixel / 255; digits: pixel / 16), enters the network as ``(x - mean) / std``."""

    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _nb201(mean: list[float], std: list[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return tuple(round(m / 255, 4) for m in mean), tuple(round(s / 255, 4) for s in std)


INFO = {  # the datasets whose shape is fixed; NAS-Bench-201's with the benchmark's own normalisation
    "digits": DatasetInfo(1, 10, 8, (0.305,), (0.375,)),
    "cifar10": DatasetInfo(3, 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo(3, 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "cifar10-valid": DatasetInfo(3, 10, 32, *_nb201([125.3, 123.0, 113.9], [63.0, 62.1, 66.7])),
    "ImageNet16-120": DatasetInfo(3, 120, 16, *_nb201([122.68, 116.66, 104.01], [63.22, 61.26, 65.09])),
}
DATASETS = (*INFO, "imagefolder")


@dataclass(frozen=True)
class DataSource:
    """Which data a run reads. ``image_size``, ``mean`` and ``std`` apply to ``imagefolder`` only
    (0 and empty: 32 px, statistics computed from the training images)."""

    name: str
    data_dir: str = ""
    image_size: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @classmethod
    def of(cls, cfg: Any) -> "DataSource":
        """The source a config names (its ``dataset``, ``data_dir``, ``image_size``, ``data_mean``, ``data_std``)."""
        return cls(cfg.dataset, cfg.data_dir, cfg.image_size, parse_floats(cfg.data_mean), parse_floats(cfg.data_std))

    @property
    def size(self) -> int:
        return self.image_size or (INFO[self.name].image_size if self.name in INFO else image_folder.DEFAULT_SIZE)


def parse_floats(text: str) -> tuple[float, ...]:
    """``'0.5,0.4, 0.3'`` -> (0.5, 0.4, 0.3); ``''`` -> ()."""
    return tuple(float(t) for t in text.split(",")) if text.strip() else ()


def dataset_info(source: DataSource) -> DatasetInfo:
    """The shape and normalisation of ``source`` (an image folder without statistics is read once
    to compute them; the driver records them in the config, so workers never do)."""
    if source.name in INFO:
        return INFO[source.name]
    if source.name != "imagefolder":
        raise DataError(f"unknown dataset {source.name!r}; choose one of {', '.join(DATASETS)}")
    return _folder_info(source, image_folder.scan(source.data_dir))


def _folder_info(source: DataSource, folder: image_folder.Folder) -> DatasetInfo:
    """An image folder's ``DatasetInfo``, its statistics computed (all images read) only when not given."""
    mean, std = source.mean, source.std
    if not mean:
        seen = image_folder.inspect(source.data_dir, source.size)
        mean, std = seen.mean, seen.std
    return DatasetInfo(len(mean), len(folder.classes), source.size, mean, std)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as ``load_digits`` reads them (1797 images of 8 x 8 in 0..16,
    and their labels), from the CSV file inside its package: importing ``sklearn.datasets`` takes
    over a second, paid by every Train worker otherwise."""
    from importlib.util import find_spec

    spec = find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset: digits needs scikit-learn installed (pip install scikit-learn)")
    data = np.loadtxt(Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def _digits(train: bool) -> Dataset:
    images, target = digits_arrays()
    order = np.random.default_rng(0).permutation(len(target))  # fixed 80/20 train/test split
    cut = int(0.8 * len(order))
    idx = order[:cut] if train else order[cut:]
    x = torch.tensor(images[idx], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - INFO["digits"].mean[0]) / INFO["digits"].std[0]
    return TensorDataset(x, torch.tensor(target[idx], dtype=torch.long))


def load_dataset(source: DataSource, train: bool = True, augment: bool = True, cutout: int = 0,
                 download: bool = False, crop_flip: bool = True) -> Dataset:
    """One split of a dataset, ready for a DataLoader (``crop_flip`` False: the crop and flip of
    batch datasets are left to the device)."""
    if source.name == "digits":
        return _digits(train)
    if source.name == "imagefolder":
        folder = image_folder.scan(source.data_dir)  # listed once per split loaded
        info = _folder_info(source, folder)
        transform = image_folder.folder_transform(info.image_size, info.mean, info.std, train and augment,
                                                  Cutout(cutout) if train and augment and cutout > 0 else None)
        return image_folder.FolderImages(folder.train if train else folder.test, info.in_channels, transform)
    info = dataset_info(source)
    images, labels = batches.load_arrays(source.name, source.data_dir, train, download)
    return ImageArrayDataset(images, labels, array_transform(info.image_size, info.mean, info.std, train and augment,
                                                             cutout, crop_flip))


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


def search_splits(source: DataSource, train_portion: float, holdout_portion: float, seed: int,
                  download: bool = False, crop_flip: bool = True) -> SearchSplits:
    """``holdout_portion`` of the training split is held out (without augmentation); of the rest,
    ``train_portion`` trains w and the remainder trains alpha (DARTS' split)."""
    augmented = load_dataset(source, train=True, download=download, crop_flip=crop_flip)
    plain = load_dataset(source, train=True, augment=False)
    held, rest = holdout_indices(len(augmented), holdout_portion, seed)
    cut = int(round(train_portion * len(rest)))
    if cut == 0 or cut == len(rest):
        raise DataError(f"train_portion {train_portion} leaves an empty split of the {len(rest)} images not held out")
    return SearchSplits(Subset(augmented, rest[:cut]), Subset(augmented, rest[cut:]), Subset(plain, held))


def train_and_measure_splits(source: DataSource, holdout_portion: float, seed: int, cutout: int = 0,
                             download: bool = False, crop_flip: bool = True) -> tuple[Dataset, Dataset]:
    """What a from-scratch training of a genotype trains on and measures on. With
    ``holdout_portion`` 0: the training split and the test split (the evaluation stage). Above 0:
    the search's w- and alpha-data together, and its held-out split (a proxy retrain)."""
    augmented = load_dataset(source, train=True, cutout=cutout, download=download, crop_flip=crop_flip)
    if holdout_portion == 0:
        return augmented, load_dataset(source, train=False)
    held, rest = holdout_indices(len(augmented), holdout_portion, seed)
    return Subset(augmented, rest), Subset(load_dataset(source, train=True, augment=False), held)


@dataclass(frozen=True)
class DataCheck:
    """What the driver learnt reading a dataset: its shape, its classes and split sizes."""

    info: DatasetInfo
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    converted: int = 0  # image folder: images converted to the folder's mode (grey, RGBA, palette, CMYK...)



def check_available(source: DataSource, download: bool = False) -> DataCheck:
    """Reads every file of the dataset on the driver (downloading CIFAR first with ``download``),
    so that a missing, malformed or empty file fails here with one line rather than in the
    workers; an image folder's statistics are computed here unless given."""
    if source.name == "digits":
        return DataCheck(INFO["digits"], len(_digits(True)), len(_digits(False)), tuple(str(i) for i in range(10)))
    if source.name == "imagefolder":
        seen = image_folder.inspect(source.data_dir, source.size)
        info = DatasetInfo(seen.channels, len(seen.folder.classes), source.size, source.mean or seen.mean,
                           source.std or seen.std)
        return DataCheck(info, len(seen.folder.train), len(seen.folder.test), seen.folder.classes, seen.converted)
    if download and source.name in batches.CIFAR_LAYOUT:
        files = batches.files_of(source.name, source.data_dir, True) + batches.files_of(source.name, source.data_dir, False)
        if not all(f.is_file() for f in files):
            try:
                batches.download(source.name, Path(source.data_dir).expanduser())
            except Exception as exc:  # offline, unwritable folder, a bad archive
                raise DataError(f"could not download {source.name} into data_dir {source.data_dir!r} "
                                f"({type(exc).__name__}: {' '.join(str(exc).split())}); fetch it by hand or point "
                                "--data-dir at a copy") from None
    n_test = len(batches.load_arrays(source.name, source.data_dir, train=False)[1])
    n_train = len(batches.load_arrays(source.name, source.data_dir, train=True)[1])
    info = INFO[source.name]
    return DataCheck(info, n_train, n_test, tuple(str(i) for i in range(info.num_classes)))


def with_statistics(cfg: Any, info: DatasetInfo) -> Any:
    """``cfg`` with an image folder's channel statistics recorded (``data_mean``/``data_std``), so
    that workers, resumes and the registered model use the ones the driver computed."""
    if cfg.dataset != "imagefolder" or cfg.data_mean:
        return cfg
    return cfg.replace(data_mean=",".join(f"{m:g}" for m in info.mean), data_std=",".join(f"{s:g}" for s in info.std))


def source_record(source: DataSource) -> dict[str, Any]:
    """The dataset as a run records it (``dataset.json``): its classes, shape and normalisation
    (and an image folder's image counts); cheap: no image is opened."""
    info = dataset_info(source)
    out: dict[str, Any] = {"dataset": source.name, "data_dir": source.data_dir}
    if source.name == "imagefolder":
        folder = image_folder.scan(source.data_dir)
        out.update(classes=list(folder.classes), train_images=len(folder.train), test_images=len(folder.test))
    else:
        out["classes"] = [str(i) for i in range(info.num_classes)]
    return {**out, "num_classes": info.num_classes, "in_channels": info.in_channels, "image_size": info.image_size,
            "mean": list(info.mean), "std": list(info.std)}


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
