"""DARTS-ES (Zela et al., ICLR 2020): stop a search when the dominant Hessian eigenvalue of the
validation loss w.r.t. alpha starts to grow, and return the genotype from before the growth.

The eigenvalue is measured every ``sharpness_every`` epochs (a *report*). Each report from the
``ceil(window / 2)``-th on gives a local average: the mean of the last ``window`` reports (fewer
at the start), placed at the centre of its window (``window // 2`` reports back). The search stops
when a local average exceeds the one ``lookback`` reports earlier by more than ``factor``, that
earlier local average's epoch is at least ``start_epoch``, and it is positive; the genotype of
that earlier epoch is the search's result.
"""

from __future__ import annotations

import math
from typing import Sequence


def local_averages(reports: Sequence[tuple[int, float]], window: int) -> list[tuple[int, float]]:
    """(centre epoch, local average) for every report that has one; ``reports``: (epoch, eigenvalue)."""
    out = []
    for j in range(len(reports)):
        if j + 1 < math.ceil(window / 2):
            continue
        values = [v for _, v in reports[max(0, j + 1 - window): j + 1]]
        out.append((reports[max(0, j - window // 2)][0], sum(values) / len(values)))
    return out


def sharpness_stop(reports: Sequence[tuple[int, float]], window: int = 5, factor: float = 1.3,
                   start_epoch: int = 10, lookback: int = 4) -> int | None:
    """The look-back epoch whose genotype the search returns, when the newest report triggers a
    stop; None to go on."""
    averages = local_averages(reports, window)
    if len(averages) <= lookback:
        return None
    (_, current), (epoch, previous) = averages[-1], averages[-1 - lookback]
    if epoch >= start_epoch and previous > 0 and current / previous > factor:
        return epoch
    return None


def eigenvalue_reports(history: Sequence[dict]) -> list[tuple[int, float]]:
    """(epoch, hessian_eig) of every epoch in a search's history that measured it."""
    return [(int(m["epoch"]), float(m["hessian_eig"])) for m in history if "hessian_eig" in m]
