"""Per-step statistics kept on the device and read once per epoch, summed over all workers.

A step adds tensors (``stats.add(loss=loss * n, n=n)``); nothing is turned into a Python number
until ``totals()``, so the hot loop never waits for the device. Shared by the search and the
evaluation loops.
"""

from __future__ import annotations

import torch

from sddarts.trainables.sd_darts.distributed import all_reduce_sum


class StepStats:
    """Running sums of named per-step figures: tensors stay on their device, numbers (sample
    counts) stay on the host, so adding either never copies or waits."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, float] = {}

    def add(self, **values: torch.Tensor | float) -> None:
        """Adds each value (a 0-d tensor or a number) to its running sum."""
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().to(torch.float64)
                self.sums[key] = self.sums[key] + value if key in self.sums else value
            else:
                self.counts[key] = self.counts.get(key, 0.0) + float(value)

    def add_batch(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, **per_sample: torch.Tensor) -> None:
        """One classification batch: its mean ``loss`` and each ``per_sample`` mean weighted by the
        batch size, the correct predictions and the sample count (``mean(totals, "loss")`` is
        then the mean over every sample of the epoch)."""
        n = len(labels)
        self.add(loss=loss * n, correct=(logits.argmax(1) == labels).sum(), n=n,
                 **{k: v * n for k, v in per_sample.items()})

    def totals(self, device: torch.device | None = None) -> dict[str, float]:
        """Every sum over all workers' steps (one device read, one all-reduce). Every worker must
        hold the same keys, as it does when all run the same steps."""
        keys, numbers = sorted(self.sums), sorted(self.counts)
        if not keys and not numbers:
            return {}
        device = device or (self.sums[keys[0]].device if keys else torch.device("cpu"))
        flat = torch.cat([torch.stack([self.sums[k].to(device) for k in keys]) if keys else
                          torch.zeros(0, dtype=torch.float64, device=device),
                          torch.tensor([self.counts[k] for k in numbers], dtype=torch.float64, device=device)])
        all_reduce_sum([flat])
        return dict(zip(keys + numbers, flat.tolist()))

    def mean(self, totals: dict[str, float], key: str, count: str = "n") -> float | None:
        """``totals[key] / totals[count]``, or None when ``key`` was never added."""
        if key not in totals or not totals.get(count):
            return None
        return totals[key] / totals[count]
