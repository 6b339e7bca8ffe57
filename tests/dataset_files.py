"""Writes small datasets in their real on-disk formats: an image folder of PNG files,
NAS-Bench-201's CIFAR-10 split file, ImageNet16's batches, and a NATS-Bench fast-mode archive
written through nats_bench's own classes."""

import json
import pickle
from pathlib import Path

import numpy as np

from cifar_files import write_cifar


def write_image_folder(root: Path, classes=("cat", "dog", "owl"), per_class: int = 12, sizes=((20, 24), (40, 36)),
                       test_split: str = "val", mode: str = "RGB", seed: int = 0) -> Path:
    """``root/train/<class>/*.png`` and ``root/<test_split>/<class>/*.png``, images of two sizes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), (test_split, max(2, per_class // 3))):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = sizes[i % len(sizes)]
                shape = (h, w, 3) if mode == "RGB" else (h, w)
                pixels = rng.integers(0, 256, shape).astype(np.uint8) // 2 + np.uint8(40 * c)  # classes differ
                Image.fromarray(pixels, mode).save(folder / f"{i:03d}.png")
    return root


def write_cifar10_valid(root: Path, per_file: int = 12) -> Path:
    """CIFAR-10's batches and NAS-Bench-201's ``cifar-split.txt`` (AutoDL's format) halving the training images."""
    write_cifar(root, "cifar10", per_file)
    n = 5 * per_file
    order = np.random.default_rng(1).permutation(n).tolist()
    (root / "cifar-split.txt").write_text(json.dumps({"train": ["int", sorted(order[: n // 2])],
                                                      "valid": ["int", sorted(order[n // 2:])]}))
    return root


def write_imagenet16(root: Path, per_file: int = 30, seed: int = 0) -> Path:
    """``root/ImageNet16/train_data_batch_1..10`` and ``val_data``: 16x16 images, labels 1..1000."""
    rng = np.random.default_rng(seed)
    folder = root / "ImageNet16"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        labels = rng.integers(1, 241, per_file)  # half of them beyond the first 120 classes
        entry = {"data": rng.integers(0, 256, (per_file, 768), dtype=np.uint8), "labels": labels.tolist(),
                 "mean": np.zeros(768)}
        with (folder / name).open("wb") as fh:
            pickle.dump(entry, fh)
    return root


BENCH_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",), "cifar100": ("x-valid", "x-test", "ori-test"),
              "ImageNet16-120": ("x-valid", "x-test", "ori-test")}


def every_cell() -> list[str]:
    """All 15,625 NAS-Bench-201 cells as architecture strings."""
    import itertools

    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    return [f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|" for a, b, c, d, e, f in itertools.product(ops, repeat=6)]


def write_nats_archive(folder: Path, arch_strs: list[str], seeds=(777, 888), epochs: int = 2, records: int = 0) -> dict:
    """A NATS-Bench topology archive in fast mode (``meta.pickle.pbz2`` and one ``{index:06d}.pickle.pbz2``
    per cell, 200-epoch results), built with nats_bench's ``ArchResults`` and ``ResultsCount``. With
    ``records`` > 0 only that many distinct records are written and cell ``i``'s file links to
    record ``i % records`` (a full-size archive in a second). Returns {arch_str: {metric: the
    archive's mean over seeds}}."""
    from nats_bench.api_utils import ArchResults, ResultsCount, pickle_save

    folder.mkdir(parents=True, exist_ok=True)
    pickle_save({"meta_archs": list(arch_strs)}, str(folder / "meta.pickle"))
    rng = np.random.default_rng(0)
    expected = {}
    distinct = records or len(arch_strs)
    for index, arch in enumerate(arch_strs[:distinct]):
        results = ArchResults(index, arch)
        accs: dict[tuple[str, str], list[float]] = {}
        for dataset, sets in BENCH_SETS.items():
            for seed in seeds:
                run = ResultsCount(dataset, None, {e: 10.0 + e for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                   0.1, 10.0, {"arch_str": arch}, seed, epochs, [0.01])
                values = {s: float(rng.uniform(10, 95)) for s in sets}
                run.update_eval({f"{s}@{e}": values[s] for s in sets for e in range(epochs)},
                                {f"{s}@{e}": 1.0 for s in sets for e in range(epochs)},
                                {f"{s}@{e}": 0.1 for s in sets for e in range(epochs)})
                results.update(dataset, seed, run)
                for s in sets:
                    accs.setdefault((dataset, s), []).append(values[s])
        pickle_save({"200": results.state_dict()}, str(folder / f"{index:06d}.pickle"))
        mean = {key: float(np.mean(v)) for key, v in accs.items()}
        expected[index] = {"bench_cifar10_valid": mean[("cifar10-valid", "x-valid")],
                          "bench_cifar10_test": mean[("cifar10", "ori-test")],
                          "bench_cifar100_test": mean[("cifar100", "x-test")],
                          "bench_imagenet16_test": mean[("ImageNet16-120", "x-test")]}
    for index in range(distinct, len(arch_strs)):
        (folder / f"{index:06d}.pickle.pbz2").symlink_to(f"{index % distinct:06d}.pickle.pbz2")
    return {arch: expected[i % distinct] for i, arch in enumerate(arch_strs)}
