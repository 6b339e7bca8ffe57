"""A line-by-line port of the reference DARTS search network (quark0/darts ``model_search.py``),
with RobustDARTS' per-edge op lists (``primitives``: the ops of each of the 14 edges per cell).

Used only to check the batched supernet: same outputs given the same weights (tests) and the
step-time comparison (``benchmarks/search_step.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces.darts_space import DARTS, CellSpace
from sddarts.search_spaces.operations import FactorizedReduce, ReLUConvBN, make_op
from sddarts.search_spaces.supernet import reduction_layers


class MixedOp(nn.Module):
    def __init__(self, c: int, stride: int, primitives: tuple[str, ...]):
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in primitives:
            op = make_op(primitive, c, stride, affine=False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev, primitives):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(c, 2 if reduction and j < 2 else 1, primitives[len(self._ops)]))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class ReferenceNetwork(nn.Module):
    def __init__(self, C, num_classes, layers, in_channels=3, steps=4, multiplier=4, stem_multiplier=3,
                 space: CellSpace = DARTS):
        super().__init__()
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev,
                                   space.ops("reduce" if reduction else "normal")))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.classifier = nn.Linear(c_p, num_classes)
        n_edges = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(n_edges, space.num_ops))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(n_edges, space.num_ops))

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            w = F.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, w)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
