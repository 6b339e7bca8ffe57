"""Progress inside an epoch: a line with the rate and the ETAs, from rank 0, at most every
``interval`` seconds after the last one, and at each tenth of an epoch that takes over a minute.
It reads step counts and the clock only, never the device (no host-device sync on a GPU)."""

from __future__ import annotations

import math
import time
from typing import Callable

LONG_EPOCH_S = 60.0  # an epoch longer than this also gets a line at each tenth


def duration(seconds: float) -> str:
    """``41s``, ``2m10s``, ``1h52m``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class EpochProgress:
    """The step hook of one epoch: ``hook(step, steps)`` after each step says, when a line is
    due, ``epoch E/N  step s/S (p%)  R img/s  epoch ETA ..  run ETA ..`` through ``say``."""

    def __init__(self, say: Callable[[str], None], epoch: int, epochs: int, images_per_step: int,
                 past_epoch_s: list[float], interval: float, clock: Callable[[], float] = time.monotonic):
        self.say, self.epoch, self.epochs = say, epoch, epochs
        self.images_per_step, self.past, self.interval, self.clock = images_per_step, past_epoch_s, interval, clock
        self.start = self.last = clock()
        self.decile = 0

    def __call__(self, step: int, steps: int) -> None:
        if step >= steps or self.interval <= 0:
            return  # the epoch's own line follows
        now = self.clock()
        elapsed = now - self.start
        epoch_s = elapsed / step * steps
        decile = 10 * step // steps
        due = now - self.last >= self.interval or (epoch_s > LONG_EPOCH_S and decile > self.decile)
        self.decile = decile
        if due:
            self.last = now
            self.say(self.line(step, steps, elapsed, epoch_s))

    def line(self, step: int, steps: int, elapsed: float, epoch_s: float) -> str:
        per_epoch = sum(self.past) / len(self.past) if self.past else epoch_s
        left = epoch_s - elapsed
        run_left = left + (self.epochs - self.epoch) * per_epoch
        rate = self.images_per_step * step / elapsed if elapsed > 0 else math.nan
        return (f"epoch {self.epoch}/{self.epochs}  step {step}/{steps} ({100 * step // steps}%)  {rate:.0f} img/s  "
                f"epoch ETA {duration(left)}  run ETA {duration(run_left)}")
