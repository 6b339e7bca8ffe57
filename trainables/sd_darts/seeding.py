"""Seeds and random-number state: what a run seeds at its start and a checkpoint saves and restores,
so a resumed run continues the same random streams."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    name, keys, *rest = rng["numpy"]  # keys come back from a checkpoint as a tensor
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(tuple(tuple(v) if isinstance(v, list) else v for v in rng["python"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
