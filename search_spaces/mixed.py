"""All mixed edges leaving one cell state, computed as one batched block.

DARTS computes each of a cell's 14 edges as 8 separate ops. Here the ``k`` edges that read the
same state are evaluated together, with the same maths:

- ``none`` is never computed: it adds ``w_none * 0``. Its alpha still gets a gradient through
  the softmax that normalises the other weights.
- max/avg pooling (+ BN) and the identity skip do not depend on the edge, so they run once
  per state; each edge only weights them.
- the four conv primitives keep per-edge weights but run as a few grouped/depthwise convs
  over ``k * C`` channels; every edge has exactly the parameters of the reference ops.
- a strided skip (FactorizedReduce) runs as two convs with ``k * C / 2`` output channels.

Tensors are laid out op-major then edge-major: ``(N, ops, k, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces.operations import CONV_SPECS, PRIMITIVES

CONV_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
SEP_OPS = ("sep_conv_3x3", "sep_conv_5x5")
_IDX = {name: i for i, name in enumerate(PRIMITIVES)}
CONV_IDX = [_IDX[n] for n in CONV_OPS]
SHARED_IDX = [_IDX["max_pool_3x3"], _IDX["avg_pool_3x3"], _IDX["skip_connect"]]


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
    """The ``k`` mixed edges that read one state, with stride ``stride``."""

    def __init__(self, channels: int, k: int, stride: int):
        super().__init__()
        c = channels
        self.c, self.k, self.stride = c, k, stride
        self.dw1 = nn.ParameterList(_conv_weight(k * c, 1, CONV_SPECS[n][0]) for n in CONV_OPS)
        self.pw1 = _conv_weight(4 * k * c, c, 1)
        self.bn1 = _BN(4 * k * c)
        self.dw2 = nn.ParameterList(_conv_weight(k * c, 1, CONV_SPECS[n][0]) for n in SEP_OPS)
        self.pw2 = _conv_weight(2 * k * c, c, 1)
        self.bn2 = _BN(2 * k * c)
        self.bn_max = _BN(c)
        self.bn_avg = _BN(c)
        if stride == 2:
            if c % 2:
                raise ValueError(f"a reduction cell needs an even channel count (got {c})")
            self.fr1 = _conv_weight(k * c // 2, c, 1)
            self.fr2 = _conv_weight(k * c // 2, c, 1)
            self.bn_fr = _BN(k * c)

    def forward(self, x: torch.Tensor, op_weights: torch.Tensor) -> torch.Tensor:
        """``x``: (N, C, H, W); ``op_weights``: (k, 8). Returns (N, k, C, H', W')."""
        k, c, s = self.k, self.c, self.stride
        n = x.shape[0]
        r = F.relu(x)
        rk = r.repeat(1, k, 1, 1) if k > 1 else r
        # first stage of the 4 conv primitives: depthwise per edge, then one grouped pointwise
        mids = [
            F.conv2d(rk, w, None, s, CONV_SPECS[name][1], CONV_SPECS[name][2], k * c)
            for name, w in zip(CONV_OPS, self.dw1)
        ]
        y1 = self.bn1(F.conv2d(torch.cat(mids, 1), self.pw1, groups=4 * k))
        h, w_ = y1.shape[-2:]
        # second stage of the two separable convs
        r2 = F.relu(y1[:, : 2 * k * c])
        mids2 = [
            F.conv2d(r2[:, i * k * c : (i + 1) * k * c], wt, None, 1, CONV_SPECS[name][1], 1, k * c)
            for i, (name, wt) in enumerate(zip(SEP_OPS, self.dw2))
        ]
        y2 = self.bn2(F.conv2d(torch.cat(mids2, 1), self.pw2, groups=2 * k))
        convs = torch.cat([y2, y1[:, 2 * k * c :]], 1).view(n, 4, k, c, h, w_)
        out = (convs * op_weights[:, CONV_IDX].t().reshape(1, 4, k, 1, 1, 1)).sum(1)
        # edge-independent ops: computed once, weighted per edge
        shared = [
            self.bn_max(F.max_pool2d(x, 3, s, 1)),
            self.bn_avg(F.avg_pool2d(x, 3, s, 1, count_include_pad=False)),
        ]
        if s == 1:
            shared.append(x)
            w_shared = op_weights[:, SHARED_IDX]
        else:
            w_shared = op_weights[:, SHARED_IDX[:2]]
            half = c // 2
            a = F.conv2d(r, self.fr1, stride=2).view(n, k, half, h, w_)
            b = F.conv2d(r[:, :, 1:, 1:], self.fr2, stride=2).view(n, k, half, h, w_)
            fr = self.bn_fr(torch.cat([a, b], 2).view(n, k * c, h, w_)).view(n, k, c, h, w_)
            out = out + fr * op_weights[:, _IDX["skip_connect"]].view(1, k, 1, 1, 1)
        stacked = torch.stack(shared, 1).view(n, len(shared), -1)
        return out + torch.matmul(w_shared, stacked).view(n, k, c, h, w_)
