"""Where a resumed worker starts: the newest checkpoint of the run that reads, falling back past
unreadable ones (truncated, a disk that filled up) with a line saying so."""

from __future__ import annotations

import os
from typing import Any, Callable

import torch

import ray
import ray.train
from sddarts.search_spaces.errors import CheckpointError
from sddarts.trainables.workers.checkpoint import load_state
from sddarts.trainables.workers.checkpoint import STATE_FILE


def older_checkpoints(checkpoint: "ray.train.Checkpoint") -> list["ray.train.Checkpoint"]:
    """The run's other ``checkpoint_*`` folders older than ``checkpoint``, newest first."""
    import pyarrow.fs

    fs, folder = checkpoint.filesystem, os.path.dirname(checkpoint.path.rstrip("/"))
    entries = fs.get_file_info(pyarrow.fs.FileSelector(folder))
    names = sorted((e.base_name for e in entries if e.type == pyarrow.fs.FileType.Directory
                    and e.base_name.startswith("checkpoint_")), reverse=True)
    current = os.path.basename(checkpoint.path.rstrip("/"))
    return [ray.train.Checkpoint(f"{folder}/{n}", filesystem=fs) for n in names if n < current]


def load_newest_readable(checkpoint: "ray.train.Checkpoint", device: torch.device,
                         say: Callable[[str], None]) -> dict[str, Any]:
    """The saved state of ``checkpoint``, or, when that file is unreadable (truncated, a disk
    that filled up), of the newest older checkpoint of the run that reads, with a line saying so."""
    candidates = [checkpoint] + older_checkpoints(checkpoint)
    for i, candidate in enumerate(candidates):
        try:
            with candidate.as_directory() as d:
                saved = load_state(os.path.join(d, STATE_FILE), map_location=device)
        except CheckpointError as exc:
            say(f"{exc}; trying an older one")
            continue
        except Exception as exc:
            say(f"checkpoint {candidate.path} is unreadable ({type(exc).__name__}); trying an older one")
            continue
        if i:
            say(f"resuming from the older checkpoint {candidate.path}")
        return saved
    raise CheckpointError(f"no readable checkpoint among {len(candidates)} under {os.path.dirname(checkpoint.path)}")
