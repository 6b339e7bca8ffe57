"""DARTS' ``MixedOp``, the reference form of a mixed edge: ``sum(w_i * op_i(x))`` over the edge's
candidate ops, one module per op (as in quark0/darts ``model_search.py``).

NAS-Bench-201's search cell uses it as it is. The DARTS-family supernet computes the same maths
batched (``mixed.StateEdges``); ``ReferenceStateEdges`` is its drop-in, edge-by-edge twin,
selected with ``--mixed-op reference`` for debugging, and ``copy_weights`` loads its parameters
into a ``StateEdges`` so the exactness tests compare the two on the same weights.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from sddarts.search_spaces.operations import Zero, make_op


class MixedOp(nn.ModuleList):
    """One edge: its candidate ops (``self[j]``) on ``channels`` channels at ``stride``, BatchNorm
    without affine parameters as in the search (``affine`` for a discrete cell); with ``pool_bn``
    (DARTS) a pooling op is followed by BatchNorm."""

    def __init__(self, ops: Sequence[str], channels: int, stride: int = 1, pool_bn: bool = True, affine: bool = False):
        modules = []
        for name in ops:
            op = make_op(name, channels, stride, affine=affine)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=affine))
            modules.append(op)
        super().__init__(modules)
        self.names = tuple(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``weights``: one per op. ``none`` is skipped (it adds ``w * 0``)."""
        return sum(w * op(x) for w, op in zip(weights, self) if not isinstance(op, Zero))


class ReferenceStateEdges(nn.Module):
    """``mixed.StateEdges``' interface, edge by edge: the ``MixedOp``s of the edges that read one state."""

    def __init__(self, channels: int, edge_ops: list[tuple[str, ...]], stride: int):
        super().__init__()
        self.c, self.k, self.stride = channels, len(edge_ops), stride
        self.edges = nn.ModuleList(MixedOp(ops, channels, stride) for ops in edge_ops)

    def forward(self, x: torch.Tensor, op_weights: torch.Tensor) -> torch.Tensor:
        """``x``: (N, C, H, W); ``op_weights``: (k, ops). Returns (N, k, C, H', W')."""
        return torch.stack([edge(x, w) for edge, w in zip(self.edges, op_weights)], 1)


@torch.no_grad()
def copy_weights(reference: ReferenceStateEdges, batched: nn.Module) -> None:
    """Loads ``reference``'s conv weights into the batched ``StateEdges`` of the same edges, slot
    by slot (its BatchNorms have no parameters; their statistics start equal)."""
    c = batched.c
    for e, edge in enumerate(reference.edges):
        for name, op in zip(edge.names, edge):
            if name in batched.conv_ops:
                block, slot = batched.conv_slot(name, e)
                first = op[0] if name in batched.sep_ops else op  # SepConv: two DilConv-like halves
                batched.dw1[batched.conv_ops.index(name)][block * c:(block + 1) * c] = first[1].weight
                batched.pw1[slot * c:(slot + 1) * c] = first[2].weight
                if name in batched.sep_ops:
                    batched.dw2[batched.sep_ops.index(name)][block * c:(block + 1) * c] = op[1][1].weight
                    batched.pw2[slot * c:(slot + 1) * c] = op[1][2].weight
            elif name == "skip_connect" and batched.stride == 2:
                half = slice(batched.edges["skip_connect"].index(e) * c // 2, (batched.edges["skip_connect"].index(e) + 1) * c // 2)
                batched.fr1[half] = op.conv_1.weight
                batched.fr2[half] = op.conv_2.weight
