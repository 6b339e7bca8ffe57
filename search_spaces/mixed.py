"""All mixed edges leaving one cell state, computed as one batched block.

DARTS' ``MixedOp`` (``mixed_op.py``; ``--mixed-op reference`` runs it) is one edge::

    out[e] = sum(w[e, j] * op_j(x) for j, op_j in enumerate(edge e's ops))

``StateEdges`` computes ``out[e]`` for all ``k`` edges that read the same state ``x`` at once,
with the same maths and parameters, for any candidate ops per edge:

- ``none`` is never computed: it adds ``w_none * 0``. Its alpha still gets a gradient through
  the softmax that normalises the other weights.
- max/avg pooling (+ BN) and the identity skip do not depend on the edge, so they run once
  per state; each edge that offers them weights them.
- each conv primitive keeps per-edge weights for the edges that offer it and runs as a few
  grouped/depthwise convs over ``edges * C`` channels; every edge has exactly the parameters
  of the reference ops and no others.
- a strided skip (FactorizedReduce) runs as two convs with ``edges * C / 2`` output channels.
- ``noise`` (RobustDARTS S4) draws N(0, 1) per edge.

The index buffers map these blocks back to ``out[e]`` and to the columns of ``op_weights``:

- a *conv slot* is one (conv op, edge) pair; conv outputs hold one ``C``-channel block per slot,
  ops in ``CONV_OPS`` order and edges ascending within an op. ``conv_edge[s]`` is slot ``s``'s
  edge and ``conv_col[s]`` its op's column in that edge's row of ``op_weights``;
- ``shared_col[e, i]`` is the column of shared op ``i`` in edge ``e``'s row, and
  ``shared_offered[e, i]`` 1.0 where edge ``e`` offers that op (0.0 masks it out);
- ``skip_connect_edge/_col`` and ``noise_edge/_col``: the edges offering a strided skip or noise,
  and those ops' columns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces.operations import CONV_SPECS

CONV_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")  # separable ones first
SEP_OPS = ("sep_conv_3x3", "sep_conv_5x5")
SHARED_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")  # edge-independent at stride 1


def _conv_weight(out_channels: int, in_per_group: int, kernel: int) -> nn.Parameter:
    """A conv weight initialised exactly like ``nn.Conv2d``'s default."""
    w = torch.empty(out_channels, in_per_group, kernel, kernel)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    return nn.Parameter(w)


class _BN(nn.BatchNorm2d):
    """BatchNorm without affine parameters, as in the DARTS search cell."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=False)


class StateEdges(nn.Module):
    """The mixed edges that read one state: ``edge_ops[e]`` are edge ``e``'s candidate ops, in
    the order of its columns of ``op_weights``."""

    def __init__(self, channels: int, edge_ops: list[tuple[str, ...]], stride: int):
        super().__init__()
        c, k = channels, len(edge_ops)
        self.c, self.k, self.stride = c, k, stride
        col = [{op: j for j, op in enumerate(ops)} for ops in edge_ops]
        self.conv_ops = [op for op in CONV_OPS if any(op in ops for ops in edge_ops)]
        self.sep_ops = [op for op in self.conv_ops if op in SEP_OPS]
        self.edges = {op: [e for e in range(k) if op in col[e]] for op in (*CONV_OPS, *SHARED_OPS, "noise")}
        pairs = [(op, e) for op in self.conv_ops for e in self.edges[op]]
        n_sep = sum(len(self.edges[op]) for op in self.sep_ops)
        self.n_pairs, self.n_sep = len(pairs), n_sep
        self.dw1 = nn.ParameterList(_conv_weight(len(self.edges[op]) * c, 1, CONV_SPECS[op][0]) for op in self.conv_ops)
        self.dw2 = nn.ParameterList(_conv_weight(len(self.edges[op]) * c, 1, CONV_SPECS[op][0]) for op in self.sep_ops)
        if pairs:
            self.pw1, self.bn1 = _conv_weight(len(pairs) * c, c, 1), _BN(len(pairs) * c)
        if n_sep:
            self.pw2, self.bn2 = _conv_weight(n_sep * c, c, 1), _BN(n_sep * c)
        if self.edges["max_pool_3x3"]:
            self.bn_max = _BN(c)
        if self.edges["avg_pool_3x3"]:
            self.bn_avg = _BN(c)
        self.shared = [op for op in SHARED_OPS if self.edges[op] and not (op == "skip_connect" and stride == 2)]
        skips = self.edges["skip_connect"]
        if stride == 2 and skips:
            if c % 2:
                raise ValueError(f"a reduction cell needs an even channel count (got {c})")
            self.fr1 = _conv_weight(len(skips) * c // 2, c, 1)
            self.fr2 = _conv_weight(len(skips) * c // 2, c, 1)
            self.bn_fr = _BN(len(skips) * c)
        self._index("conv", [e for _, e in pairs], [col[e][op] for op, e in pairs])
        for op in ("skip_connect", "noise"):
            self._index(op, self.edges[op], [col[e][op] for e in self.edges[op]])
        shared_col = [[col[e].get(op, 0) for op in self.shared] for e in range(k)]
        shared_offered = [[float(op in col[e]) for op in self.shared] for e in range(k)]
        self.register_buffer("shared_col", torch.tensor(shared_col, dtype=torch.long).view(k, -1), persistent=False)
        self.register_buffer("shared_offered", torch.tensor(shared_offered).view(k, -1), persistent=False)

    def _index(self, name: str, edges: list[int], cols: list[int]) -> None:
        self.register_buffer(f"{name}_edge", torch.tensor(edges, dtype=torch.long), persistent=False)
        self.register_buffer(f"{name}_col", torch.tensor(cols, dtype=torch.long), persistent=False)

    def conv_slot(self, op: str, edge: int) -> tuple[int, int]:
        """(position of ``edge`` among the edges offering ``op``, i.e. its block in ``op``'s
        depthwise weights; index of the (op, edge) slot in the pointwise weights and outputs)."""
        pos = self.edges[op].index(edge)
        return pos, sum(len(self.edges[o]) for o in self.conv_ops[: self.conv_ops.index(op)]) + pos

    def forward(self, x: torch.Tensor, op_weights: torch.Tensor) -> torch.Tensor:
        """``x``: (N, C, H, W); ``op_weights``: (k, ops). Returns (N, k, C, H', W')."""
        k, c, s = self.k, self.c, self.stride
        n = x.shape[0]
        r = F.relu(x)
        h, w_ = (x.shape[-2] - 1) // s + 1, (x.shape[-1] - 1) // s + 1
        out = x.new_zeros(n, k, c, h, w_, dtype=torch.promote_types(x.dtype, op_weights.dtype))  # fp32 under autocast
        if self.n_pairs:
            out = out.index_add(1, self.conv_edge, self._convs(r) * op_weights[self.conv_edge, self.conv_col].view(1, -1, 1, 1, 1))
        if self.shared:
            ops = {"max_pool_3x3": lambda: self.bn_max(F.max_pool2d(x, 3, s, 1)),
                   "avg_pool_3x3": lambda: self.bn_avg(F.avg_pool2d(x, 3, s, 1, count_include_pad=False)),
                   "skip_connect": lambda: x}
            stacked = torch.stack([ops[op]() for op in self.shared], 1).reshape(n, len(self.shared), -1)
            w_shared = op_weights.gather(1, self.shared_col) * self.shared_offered
            out = out + torch.matmul(w_shared, stacked).reshape(n, k, c, h, w_)
        if s == 2 and len(self.skip_connect_edge):
            m, half = len(self.skip_connect_edge), c // 2
            a = F.conv2d(r, self.fr1, stride=2).reshape(n, m, half, h, w_)
            b = F.conv2d(r[:, :, 1:, 1:], self.fr2, stride=2).reshape(n, m, half, h, w_)
            fr = self.bn_fr(torch.cat([a, b], 2).reshape(n, m * c, h, w_)).reshape(n, m, c, h, w_)
            weights = op_weights[self.skip_connect_edge, self.skip_connect_col].view(1, m, 1, 1, 1)
            out = out.index_add(1, self.skip_connect_edge, fr * weights)
        if len(self.noise_edge):
            m = len(self.noise_edge)
            noise = torch.randn(n, m, c, h, w_, device=x.device, dtype=x.dtype)
            out = out.index_add(1, self.noise_edge, noise * op_weights[self.noise_edge, self.noise_col].view(1, m, 1, 1, 1))
        return out

    def _convs(self, r: torch.Tensor) -> torch.Tensor:
        """Every conv slot's output on the relu'd input: (N, slots, C, H', W')."""
        c, s = self.c, self.stride
        n = r.shape[0]
        sizes = [len(self.edges[op]) for op in self.conv_ops]
        # first stage of every conv primitive: depthwise per edge, then one grouped pointwise
        mids = [F.conv2d(r.repeat(1, m, 1, 1) if m > 1 else r, w, None, s, CONV_SPECS[op][1], CONV_SPECS[op][2], m * c)
                for op, w, m in zip(self.conv_ops, self.dw1, sizes)]
        y1 = self.bn1(F.conv2d(torch.cat(mids, 1), self.pw1, groups=self.n_pairs))
        h, w_ = y1.shape[-2:]
        if not self.n_sep:
            return y1.reshape(n, self.n_pairs, c, h, w_)
        # second stage of the separable convs (their pairs come first)
        r2, start, mids2 = F.relu(y1[:, : self.n_sep * c]), 0, []
        for op, wt in zip(self.sep_ops, self.dw2):
            m = len(self.edges[op])
            mids2.append(F.conv2d(r2[:, start * c:(start + m) * c], wt, None, 1, CONV_SPECS[op][1], 1, m * c))
            start += m
        y2 = self.bn2(F.conv2d(torch.cat(mids2, 1), self.pw2, groups=self.n_sep))
        return torch.cat([y2, y1[:, self.n_sep * c:]], 1).reshape(n, self.n_pairs, c, h, w_)
