"""Statistics for comparisons across seeds: means with Student-t confidence intervals and paired
tests of two methods run with the same seeds (scipy.stats)."""

from __future__ import annotations

import math
from typing import Sequence


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the ``level`` Student-t confidence interval of the mean; the interval
    is NaN for fewer than two values."""
    from scipy import stats

    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(xs)
    if sem == 0:
        return mean, mean, mean
    half = sem * stats.t.ppf(0.5 + level / 2, len(xs) - 1)
    return mean, mean - half, mean + half


def paired_test(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> dict[str, float]:
    """Paired t-test of ``b - a`` over the seeds both hold (``{seed: value}``): the mean
    difference, its confidence interval, t and the two-sided p-value (NaN below two pairs or when
    every difference is equal)."""
    from scipy import stats

    seeds = sorted(s for s in set(a) & set(b)
                   if a[s] is not None and b[s] is not None and math.isfinite(a[s]) and math.isfinite(b[s]))
    diffs = [b[s] - a[s] for s in seeds]
    mean, low, high = mean_ci(diffs, level)
    t = p = math.nan
    if len(diffs) >= 2 and max(diffs) - min(diffs) > 1e-9 * max(1.0, abs(mean)):  # equal up to rounding: no test
        result = stats.ttest_rel([b[s] for s in seeds], [a[s] for s in seeds])
        t, p = float(result.statistic), float(result.pvalue)
    return {"pairs": len(diffs), "diff": mean, "diff_low": low, "diff_high": high, "t": t, "p": p}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` read together (NaNs stay NaN and do not count):
    the i-th smallest of m becomes ``max over j <= i of min(1, (m - j + 1) * p_(j))``. Rejecting
    where the adjusted value is below alpha keeps the family-wise error rate at alpha."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and math.isfinite(p))
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
