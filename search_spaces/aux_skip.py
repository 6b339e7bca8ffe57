"""DARTS-' auxiliary skip connection (Chu et al., "DARTS-: Robustly Stepping out of Performance
Collapse Without Indicators", ICLR 2021).

Every mixed edge gets a skip connection outside the softmax, weighted by a scheduled coefficient
that no alpha controls::

    o_bar(x) = beta_skip(ep) * aux(x) + sum_o softmax(alpha)_o * o(x)
    beta_skip(ep) = beta_0 * (EP - ep) / EP          (ep = 0 .. EP-1: 1.0, 0.98, ..., 0.02 for EP = 50)

``aux`` is the identity on stride-1 edges and DARTS' ``FactorizedReduce`` (its own weights, trained
with w) on stride-2 edges, as Meituan-AutoML/DARTS-'s ``MixedOp`` does. The genotype ignores it;
``derived_val_acc`` is measured without it (the derived cell has no auxiliary skip).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from sddarts.search_spaces.operations import FactorizedReduce


def aux_skip_coefficient(beta0: float, epoch: int, epochs: int) -> float:
    """beta_skip at the start of 0-based ``epoch`` of ``epochs``: linear from ``beta0`` towards 0
    (DARTS-' ``DecayScheduler``, ``linear``, stepped once per epoch)."""
    return beta0 * (epochs - epoch) / epochs


class AuxSkip(nn.Module):
    """The auxiliary skips of the ``k`` edges that read one state: the identity at stride 1, one
    ``FactorizedReduce`` per edge at stride 2. ``forward(x)`` returns ``(N, k or 1, C, H', W')``."""

    def __init__(self, channels: int, k: int, stride: int):
        super().__init__()
        self.reduce = (nn.ModuleList(FactorizedReduce(channels, channels, affine=False) for _ in range(k))
                       if stride == 2 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reduce is None:
            return x.unsqueeze(1)  # the same identity on every edge: broadcast
        return torch.stack([fr(x) for fr in self.reduce], 1)


def set_aux_skip(modules, coefficient: float) -> None:
    """Sets beta_skip on every supernet in ``modules`` (the student, its teachers, the unrolled copy:
    a teacher uses the student's current coefficient)."""
    for m in modules:
        if m is not None and hasattr(m, "aux_skip_coef"):
            m.aux_skip_coef = float(coefficient)


@contextmanager
def without_aux_skip(net: nn.Module) -> Iterator[None]:
    """The supernet without its auxiliary skips, for measuring a derived cell (which has none)."""
    saved = getattr(net, "aux_skip_coef", 0.0)
    set_aux_skip([net], 0.0)
    try:
        yield
    finally:
        set_aux_skip([net], saved)
