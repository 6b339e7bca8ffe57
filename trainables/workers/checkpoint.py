"""Checkpoint files, written in a form that ``torch.load(weights_only=True)`` reads (tensors,
numbers, strings, lists, tuples, dicts) and read only that way: a checkpoint on shared storage
cannot run code on the nodes that resume or record from it.

A checkpoint that needs full unpickling (written before, or by something else) is refused with
one line; if you trust it, convert it once: ``python -m sddarts.trainables.workers.checkpoint FILE...``.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import torch

from sddarts.search_spaces.errors import CheckpointError, StorageFullError

STATE_FILE = "state.pt"  # what a checkpoint folder holds


def plain(obj: Any) -> Any:
    """``obj`` with numpy arrays as tensors and numpy scalars as Python numbers, recursively."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind == "u" else obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, plain(v)) for k, v in obj.items())
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)  # named tuples too: weights_only reads plain ones
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj


def save_state(state: dict[str, Any], path: str) -> None:
    """Writes ``state`` so that ``load_state`` reads it without unpickling code."""
    torch.save(plain(state), path)


def load_state(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """Reads a checkpoint with ``torch.load(weights_only=True)``; raises CheckpointError for one
    that would need to run code to load."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"checkpoint {path} needs full unpickling, which can run code, so sddarts does not load "
                              f"it ({detail}); if you trust it, convert it once with: "
                              f"python -m sddarts.trainables.workers.checkpoint {path}") from None


def convert(path: str) -> None:
    """Rewrites a trusted checkpoint that needs unpickling in the safe form (in place)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    save_state(state, path)
    load_state(path)  # check it reads safely now


if __name__ == "__main__":
    for file in sys.argv[1:]:
        convert(file)
        print(f"converted {file}")
