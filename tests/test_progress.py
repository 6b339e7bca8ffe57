"""Progress inside an epoch: a line with the rate and both ETAs when the interval has passed (or at
each tenth of an epoch over a minute), none for a fast epoch; a sweep's trials done and its ETA."""

from __future__ import annotations

import re

import pytest

from sddarts.platform.tuning.experiment import trials_done
from sddarts.trainables.workers.progress import EpochProgress, duration


def run_epoch(step_s: float, steps: int, interval: float, past: list[float] | None = None) -> list[str]:
    """The lines of one epoch of ``steps`` steps of ``step_s`` seconds each, on a fake clock."""
    now = [0.0]
    lines: list[str] = []
    hook = EpochProgress(lines.append, 3, 50, 64, past or [], interval, clock=lambda: now[0])
    for step in range(1, steps + 1):
        now[0] += step_s
        hook(step, steps)
    return lines


def test_a_fast_epoch_prints_nothing():
    assert run_epoch(0.1, 50, 30.0) == []  # 5 s: under the interval, and under a minute


def test_a_long_epoch_prints_its_rate_and_both_etas():
    lines = run_epoch(10.0, 390, 30.0)  # 3900 s an epoch: a line every 3 steps (30 s)
    assert 120 <= len(lines) <= 130
    first = lines[0]
    assert first.startswith("epoch 3/50  step 3/390 (0%)  6 img/s  epoch ETA 1h04m  run ETA ")
    eta = re.search(r"run ETA (\S+)", first)[1]
    assert eta == duration(3870 + 47 * 3900)  # this epoch's rest, then 47 epochs at this epoch's pace


def test_an_epoch_over_a_minute_prints_at_each_tenth():
    lines = run_epoch(8.0, 10, 30.0)  # 80 s: a line at each tenth though 30 s have not passed
    assert [re.search(r"step (\d+)/", line)[1] for line in lines] == [str(s) for s in range(1, 10)]


def test_the_run_eta_uses_the_epochs_already_timed():
    line = run_epoch(10.0, 10, 5.0, past=[200.0, 400.0])[0]  # 100 s this epoch, 300 s on average before
    assert line.endswith(f"run ETA {duration(90 + 47 * 300)}")


def test_no_line_at_the_last_step_or_with_no_interval():
    lines = run_epoch(100.0, 2, 30.0)
    assert len(lines) == 1 and "step 1/2" in lines[0]  # step 1 only: the epoch's own line follows step 2
    assert run_epoch(100.0, 10, 0.0) == []


@pytest.mark.parametrize("seconds, text", [(41.4, "41s"), (130, "2m10s"), (6720, "1h52m"), (float("nan"), "?")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert duration(seconds) == text


def test_a_sweep_says_how_many_trials_are_done_and_when_the_rest_will_be():
    assert trials_done(3, 8, 250.0) == "3 of 8 trials done (37%) in 4m10s, ETA 6m57s"
    assert trials_done(8, 8, 600.0) == "8 of 8 trials done (100%) in 10m00s"
    assert trials_done(4, 8, 100.0, done_here=1) == "4 of 8 trials done (50%) in 1m40s, ETA 6m40s"  # resumed
