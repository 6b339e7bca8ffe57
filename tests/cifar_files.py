"""Writes a tiny dataset in CIFAR's own on-disk format (python pickle batches)."""

import pickle
from pathlib import Path

import numpy as np


def write_cifar(root: Path, name: str = "cifar10", per_file: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        folder, files, key, classes = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", 10
    else:
        folder, files, key, classes = "cifar-100-python", ["train", "test"], b"fine_labels", 100
    (root / folder).mkdir(parents=True, exist_ok=True)
    for f in files:
        entry = {b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 key: rng.integers(0, classes, per_file).tolist(), b"batch_label": f.encode()}
        with (root / folder / f).open("wb") as fh:
            pickle.dump(entry, fh)
    return root
