"""The DARTS-family search supernet: a stack of search cells over a continuous relaxation.

Architecture weights alpha live in the supernet as two ``(14, ops)`` parameters, one for normal
and one for reduction cells, where ``ops`` is the number of candidate ops per edge of its space.
``forward(x)`` uses ``softmax(alpha)``; ``forward(x, op_weights)`` takes explicit op weights
instead (for example the one-hot weights of a genotype).

Two of the field's fixes change the supernet itself, both off by default: DARTS-' auxiliary skip
(``aux_skip``, ``aux_skip.py``) and PC-DARTS' partial channels with edge normalisation
(``partial_channels`` K > 1, ``partial_channels.py``). Off, the supernet is exactly DARTS'.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces import partial_channels as pc
from sddarts.search_spaces.aux_skip import AuxSkip
from sddarts.search_spaces.darts_space import DARTS, NUM_EDGES, STEPS, CellSpace, edge_index
from sddarts.search_spaces.genotypes import Genotype, derive_from_weights, genotype_weights
from sddarts.search_spaces.mixed import StateEdges
from sddarts.search_spaces.mixed_op import ReferenceStateEdges
from sddarts.search_spaces.operations import FactorizedReduce, ReLUConvBN

__all__ = ["NUM_EDGES", "STEPS", "Supernet", "edge_index", "reduction_layers"]

MIXED_OPS = {"batched": StateEdges, "reference": ReferenceStateEdges}  # how a state's mixed edges are computed


def reduction_layers(layers: int) -> tuple[int, int]:
    """The cells that reduce resolution: at 1/3 and 2/3 of the depth."""
    return layers // 3, 2 * layers // 3


class SearchCell(nn.Module):
    """A search cell: 2 inputs, 4 intermediate nodes, every edge a mixed op over its candidates."""

    def __init__(self, space: CellSpace, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 mixed: str = "batched", partial_channels: int = 1, aux_skip: bool = False):
        super().__init__()
        self.reduction, self.k = reduction, partial_channels
        self.aux = nn.ModuleList() if aux_skip else None
        edge_ops = space.ops("reduce" if reduction else "normal")
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.states = nn.ModuleList()
        for src in range(STEPS + 1):  # states 0,1 are the inputs; state 2+i is node i
            rows = [edge_index(src, node) for node in range(max(0, src - 1), STEPS)]
            stride = 2 if reduction and src < 2 else 1
            self.states.append(MIXED_OPS[mixed](c // self.k, [edge_ops[r] for r in rows], stride))
            if self.aux is not None:
                self.aux.append(AuxSkip(c // self.k, len(rows), stride))
            self.register_buffer(f"rows{src}", torch.tensor(rows), persistent=False)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, op_weights: torch.Tensor, aux_coef: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        nodes: list[torch.Tensor | None] = [None] * STEPS
        for src in range(len(self.states)):
            if src >= 2:
                states.append(nodes[src - 2])
            out = self.edges_from(src, states[src], op_weights[getattr(self, f"rows{src}")], aux_coef)
            for e, node in enumerate(range(max(0, src - 1), STEPS)):
                nodes[node] = out[:, e] if nodes[node] is None else nodes[node] + out[:, e]
        return torch.cat(nodes, dim=1)

    def edges_from(self, src: int, x: torch.Tensor, weights: torch.Tensor, aux_coef: float) -> torch.Tensor:
        """The outputs ``(N, k, C, H', W')`` of the mixed edges reading state ``src``: the ops on
        ``x`` (its first C/K channels under partial channels), plus beta_skip * aux (DARTS-), plus
        the bypassed channels, shuffled (PC-DARTS)."""
        part = pc.sampled(x, self.k) if self.k > 1 else x
        out = self.states[src](part, weights)
        if self.aux is not None and aux_coef:
            out = out + aux_coef * self.aux[src](part)
        return pc.join(out, x, self.k, self.states[src].stride, weights) if self.k > 1 else out


class Alphas(nn.Module):
    """The architecture parameters, kept in their own submodule so DDP can be told to skip them;
    with partial channels, PC-DARTS' edge-normalisation weights too (``edge_normal/_reduce``)."""

    def __init__(self, num_ops: int, edge_weights: bool = False):
        super().__init__()
        self.normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, num_ops))
        self.reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, num_ops))
        if edge_weights:
            self.edge_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))
            self.edge_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES))


class Supernet(nn.Module):
    """The DARTS search network of a DARTS-family space, with alpha for normal and reduction cells.
    ``mixed``: ``batched`` (``StateEdges``) or ``reference`` (DARTS' per-edge ``MixedOp``);
    ``partial_channels``: PC-DARTS' K (1: off); ``aux_skip``: DARTS-' auxiliary skips, weighted by
    the attribute ``aux_skip_coef`` (set by the search's schedule)."""

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, in_channels: int = 3,
                 stem_multiplier: int = 3, space: CellSpace = DARTS, mixed: str = "batched",
                 partial_channels: int = 1, aux_skip: bool = False):
        super().__init__()
        if layers < 3:
            raise ValueError(f"layers must be >= 3 so that both reduction cells exist (got {layers})")
        if C % partial_channels:
            raise ValueError(f"C must be divisible by partial_channels (got C {C}, K {partial_channels})")
        self.partial_channels, self.aux_skip_coef = partial_channels, 0.0
        self.C, self.num_classes, self.layers, self.in_channels = C, num_classes, layers, in_channels
        self.space = space
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(space, c_pp, c_p, c_curr, reduction, reduction_prev, mixed, partial_channels,
                                         aux_skip))
            reduction_prev = reduction
            c_pp, c_p = c_p, STEPS * c_curr
        self.classifier = nn.Linear(c_p, num_classes)
        self.arch = Alphas(space.num_ops, edge_weights=partial_channels > 1)

    ALPHA_NAMES = ("arch.normal", "arch.reduce")

    @property
    def alpha_normal(self) -> nn.Parameter:
        return self.arch.normal

    @property
    def alpha_reduce(self) -> nn.Parameter:
        return self.arch.reduce

    def alphas(self) -> list[nn.Parameter]:
        """The architecture parameters [alpha_normal, alpha_reduce]."""
        return [self.arch.normal, self.arch.reduce]

    def arch_parameters(self) -> list[nn.Parameter]:
        """What the alpha step trains: alpha, and PC-DARTS' edge weights where partial channels are on."""
        edges = [self.arch.edge_normal, self.arch.edge_reduce] if self.partial_channels > 1 else []
        return self.alphas() + edges

    def w_parameters(self) -> Iterator[nn.Parameter]:
        """The network weights w (every parameter except alpha)."""
        return (p for name, p in self.named_parameters() if not name.startswith("arch."))

    def mix_probs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """softmax(alpha) per edge, for normal and reduction cells (what SDARTS perturbs)."""
        return F.softmax(self.alpha_normal, dim=-1), F.softmax(self.alpha_reduce, dim=-1)

    def op_weights(self, probs: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The op weights the cells use: ``probs`` (default softmax(alpha)), times PC-DARTS' edge
        normalisation where partial channels are on."""
        probs = self.mix_probs() if probs is None else probs
        if self.partial_channels == 1:
            return tuple(probs)
        edges = (self.arch.edge_normal, self.arch.edge_reduce)
        return tuple(p * pc.edge_normalisation(e, pc.DARTS_NODE_EDGES).unsqueeze(-1) for p, e in zip(probs, edges))

    def derive(self) -> Genotype:
        """The genotype alpha encodes now (DARTS' rule; on softmax(alpha) * edge weights with partial channels)."""
        with torch.no_grad():
            return derive_from_weights(*self.op_weights(), self.space.name)

    def genotype_weights(self, genotype: Genotype) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot op weights that select exactly ``genotype``'s edges and ops."""
        return genotype_weights(genotype, self.alpha_normal.device)

    def forward(self, x: torch.Tensor, op_weights: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits; ``op_weights`` (normal, reduce), each ``(14, ops)``, replace ``softmax(alpha)``."""
        w_normal, w_reduce = self.op_weights() if op_weights is None else op_weights
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal, self.aux_skip_coef)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
