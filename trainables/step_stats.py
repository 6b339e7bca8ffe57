"""Per-step statistics kept on the device and read once per epoch, summed over all workers.

A step adds tensors (``stats.add(loss=loss * n, n=n)``); nothing is turned into a Python number
until ``totals()``, so the hot loop never waits for the device. Shared by the search and the
evaluation loops.
"""

from __future__ import annotations

import torch

from sddarts.trainables.distributed import all_reduce_sum


class StepStats:
    """Running sums of named per-step figures."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, **values: torch.Tensor | float) -> None:
        """Adds each value (a 0-d tensor or a number) to its running sum."""
        for key, value in values.items():
            value = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            value = value.to(torch.float64)
            self.sums[key] = self.sums[key] + value.to(self.sums[key].device) if key in self.sums else value

    def totals(self, device: torch.device | None = None) -> dict[str, float]:
        """Every sum over all workers' steps (one device read, one all-reduce). Every worker must
        hold the same keys, as it does when all run the same steps."""
        keys = sorted(self.sums)
        if not keys:
            return {}
        device = device or next(iter(self.sums.values())).device
        flat = torch.stack([self.sums[k].to(device) for k in keys])
        all_reduce_sum([flat])
        return dict(zip(keys, flat.tolist()))

    def mean(self, totals: dict[str, float], key: str, count: str = "n") -> float | None:
        """``totals[key] / totals[count]``, or None when ``key`` was never added."""
        if key not in totals or not totals.get(count):
            return None
        return totals[key] / totals[count]
