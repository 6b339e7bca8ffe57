"""Mixed precision: the one autocast every forward of a search or an evaluation runs under."""

from __future__ import annotations

import torch


def autocast(cfg, device: torch.device, enabled: bool = True):
    """The forward's autocast context: bf16 with ``precision bf16`` (and ``enabled``), else a no-op.
    ``cfg``: a ``SearchConfig`` or ``EvalConfig``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and cfg.precision == "bf16")
