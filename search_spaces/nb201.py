"""NAS-Bench-201's cell space (Dong and Yang, ICLR 2020): one cell type with 4 nodes and 6 edges,
node ``j`` summing an op on every earlier node; ops none, skip_connect, nor_conv_1x1,
nor_conv_3x3, avg_pool_3x3 (``nor_conv`` = ReLU-Conv-BN). The macro network: a 3x3 stem of C
channels, three stages of N cells at C/2C/4C joined by stride-2 residual blocks, BN-ReLU, global
pooling, linear. A genotype is written as the benchmark's architecture string,
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.

Here ``layers`` is N, the cells per stage (the benchmark uses N=5, C=16).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces import operations
from sddarts.search_spaces import partial_channels as pc
from sddarts.search_spaces.errors import GenotypeError
from sddarts.search_spaces.mixed_op import MixedOp
from sddarts.search_spaces.operations import ReLUConvBN

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NODES = 4
# (input node, output node) of each edge, in the benchmark's order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
EDGES: tuple[tuple[int, int], ...] = tuple((src, dst) for dst in range(1, NODES) for src in range(dst))


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """A NAS-Bench-201 op on ``channels`` channels at stride 1 (``operations.make_op``'s)."""
    if name not in NB201_OPS:
        raise ValueError(f"unknown NAS-Bench-201 op {name!r}; choose one of {', '.join(NB201_OPS)}")
    return operations.make_op(name, channels, 1, affine)


@dataclass(frozen=True)
class NB201Genotype:
    """One op per edge, in ``EDGES`` order."""

    edges: tuple[str, ...]
    space: str = "nb201"

    cells = ("cell",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(str(op) for op in self.edges))
        if len(self.edges) != len(EDGES):
            raise GenotypeError(f"a NAS-Bench-201 cell needs {len(EDGES)} edges, got {len(self.edges)}")
        for (src, dst), op in zip(EDGES, self.edges):
            if op not in NB201_OPS:
                raise GenotypeError(f"edge {src}->{dst}: unknown op {op!r}; use one of {', '.join(NB201_OPS)}")

    def arch_str(self) -> str:
        """The benchmark's architecture string."""
        groups = [[f"{op}~{src}" for (src, dst), op in zip(EDGES, self.edges) if dst == node] for node in range(1, NODES)]
        return "+".join("|" + "|".join(g) + "|" for g in groups)

    @classmethod
    def from_arch_str(cls, text: str) -> "NB201Genotype":
        nodes = text.strip().split("+")
        if len(nodes) != NODES - 1:
            raise GenotypeError(f"NAS-Bench-201 string {text!r} needs {NODES - 1} node groups joined by '+'")
        edges = []
        for dst, group in enumerate(nodes, start=1):
            entries = [e for e in group.strip("|").split("|")]
            if [e.rpartition("~")[2] for e in entries] != [str(src) for src in range(dst)]:
                raise GenotypeError(f"node {dst} of {text!r} needs entries op~0 .. op~{dst - 1} in order")
            edges += [e.rpartition("~")[0] for e in entries]
        return cls(tuple(edges))

    def short(self) -> str:
        return self.arch_str()

    def to_python(self) -> str:
        """``genotype.py``: the benchmark's string, as ``nats_bench``/NAS-Bench-201's API takes it."""
        return ("# Derived by sddarts in NAS-Bench-201's cell space; look it up with\n"
                "# nats_bench.create(path, 'tss', fast_mode=True).query_index_by_arch(ARCH)\n"
                f"ARCH = {self.arch_str()!r}\n")

    def to_dict(self) -> dict:
        return {"space": self.space, "arch": self.arch_str()}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> "NB201Genotype":
        arch = data.get("arch")
        if not isinstance(arch, str):
            raise GenotypeError("a NAS-Bench-201 genotype needs an 'arch' string like |nor_conv_3x3~0|+|...|")
        return cls.from_arch_str(arch)

    def ops_of(self, cell: str = "cell") -> list[str]:
        return list(self.edges)

    def graph(self, cell: str = "cell") -> tuple[dict[int, str], list[tuple[str, int, int]], list[int]]:
        """For pictures: (input node, the (op, from, to) edges other than ``none``, output node)."""
        return {0: "in (0)"}, [(op, src, dst) for (src, dst), op in zip(EDGES, self.edges) if op != "none"], [NODES - 1]


def derive(alpha: torch.Tensor) -> NB201Genotype:
    """The benchmark's DARTS rule: the strongest op of every edge, ``none`` included."""
    with torch.no_grad():
        return NB201Genotype(tuple(NB201_OPS[int(i)] for i in alpha.detach().float().cpu().argmax(dim=-1)))


def one_hot(genotype: NB201Genotype, device: torch.device | str = "cpu") -> torch.Tensor:
    w = torch.zeros(len(EDGES), len(NB201_OPS), device=device)
    for e, op in enumerate(genotype.edges):
        w[e, NB201_OPS.index(op)] = 1.0
    return w


class ResidualReduction(nn.Module):
    """The stride-2 residual block between stages (the benchmark's ResNetBasicblock)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    """A cell: ``ops[e]`` are edge ``e``'s candidate ops, each edge DARTS' ``MixedOp`` (the
    benchmark's search cell has no BatchNorm after pooling); one op per edge: a discrete cell.
    In the search, ``partial_channels`` K > 1 sends C/K channels through the ops (PC-DARTS) and
    ``aux_skip`` adds DARTS-' identity on every edge, weighted by ``aux_coef``."""

    def __init__(self, channels: int, ops: list[tuple[str, ...]], affine: bool, partial_channels: int = 1,
                 aux_skip: bool = False):
        super().__init__()
        unknown = [name for edge in ops for name in edge if name not in NB201_OPS]
        if unknown:
            raise ValueError(f"unknown NAS-Bench-201 op {unknown[0]!r}; choose one of {', '.join(NB201_OPS)}")
        self.k = partial_channels
        self.edges = nn.ModuleList(MixedOp(edge, channels // self.k, 1, pool_bn=False, affine=affine) for edge in ops)
        self.aux_skip = aux_skip  # every edge is stride 1: the auxiliary skip is the identity

    def forward(self, x: torch.Tensor, op_weights: torch.Tensor | None = None, aux_coef: float = 0.0) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, NODES):
            total = 0
            for e, (src, d) in enumerate(EDGES):
                if d == dst:
                    edge = self.edges[e]
                    total = total + (edge[0](nodes[src]) if op_weights is None else
                                     self._edge(e, nodes[src], op_weights[e], aux_coef))
            nodes.append(total)
        return nodes[-1]

    def _edge(self, e: int, x: torch.Tensor, weights: torch.Tensor, aux_coef: float) -> torch.Tensor:
        """One mixed edge, with the fixes that apply: PC-DARTS' sampled channels and DARTS-' skip."""
        part = pc.sampled(x, self.k) if self.k > 1 else x
        out = self.edges[e](part, weights)
        if self.aux_skip and aux_coef:
            out = out + aux_coef * part
        if self.k > 1:
            return pc.join(out.unsqueeze(1), x, self.k, 1, weights.unsqueeze(0)).squeeze(1)
        return out


def _stages(C: int, N: int) -> list[tuple[int, bool]]:
    """(channels, is a residual reduction) of every block after the stem."""
    return [(C, False)] * N + [(2 * C, True)] + [(2 * C, False)] * N + [(4 * C, True)] + [(4 * C, False)] * N


class _Macro(nn.Module):
    """Stem, three stages of cells joined by residual reductions, BN-ReLU, pooling, linear."""

    def __init__(self, C: int, num_classes: int, N: int, in_channels: int, cell_ops: list[tuple[str, ...]], affine: bool,
                 partial_channels: int = 1, aux_skip: bool = False):
        super().__init__()
        self.aux_skip_coef = 0.0  # DARTS-' beta_skip, set by the search's schedule
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.blocks = nn.ModuleList()
        c_prev = C
        for c, reduce in _stages(C, N):
            self.blocks.append(ResidualReduction(c_prev, c) if reduce else
                               NB201Cell(c, cell_ops, affine, partial_channels, aux_skip))
            c_prev = c
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c_prev, num_classes)

    def logits(self, x: torch.Tensor, op_weights: torch.Tensor | None) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, op_weights, self.aux_skip_coef) if isinstance(block, NB201Cell) else block(x)
        return self.classifier(F.adaptive_avg_pool2d(self.lastact(x), 1).flatten(1))


class NB201Supernet(_Macro):
    """The search network: every edge a softmax(alpha)-weighted sum of the 5 ops; one alpha ``(6, 5)``.
    ``partial_channels`` K > 1 adds PC-DARTS' edge weights (``arch.edge_cell``, 6); ``aux_skip``
    DARTS-' identity on every edge. Both are off by default."""

    ALPHA_NAMES = ("arch.cell",)

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 5, in_channels: int = 3,
                 partial_channels: int = 1, aux_skip: bool = False):
        if C % partial_channels:
            raise ValueError(f"C must be divisible by partial_channels (got C {C}, K {partial_channels})")
        super().__init__(C, num_classes, layers, in_channels, [NB201_OPS] * len(EDGES), affine=False,
                         partial_channels=partial_channels, aux_skip=aux_skip)
        self.partial_channels = partial_channels
        self.arch = nn.ParameterDict({"cell": nn.Parameter(1e-3 * torch.randn(len(EDGES), len(NB201_OPS)))})
        if partial_channels > 1:
            self.arch["edge_cell"] = nn.Parameter(1e-3 * torch.randn(len(EDGES)))

    def alphas(self) -> list[nn.Parameter]:
        return [self.arch["cell"]]

    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha, and PC-DARTS' edge weights where partial channels are on."""
        return self.alphas() + ([self.arch["edge_cell"]] if self.partial_channels > 1 else [])

    def w_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if not name.startswith("arch."))

    def mix_probs(self) -> tuple[torch.Tensor]:
        return (F.softmax(self.arch["cell"], dim=-1),)

    def op_weights(self, probs: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor]:
        """``probs`` (default softmax(alpha)), times the edge weights with partial channels."""
        (p,) = self.mix_probs() if probs is None else probs
        if self.partial_channels == 1:
            return (p,)
        return (p * pc.edge_normalisation(self.arch["edge_cell"], pc.NB201_NODE_EDGES).unsqueeze(-1),)

    def derive(self) -> NB201Genotype:
        """Every edge's strongest op (NAS-Bench-201 keeps every edge, so edge weights never change it)."""
        return derive(self.arch["cell"])

    def genotype_weights(self, genotype: NB201Genotype) -> tuple[torch.Tensor]:
        return (one_hot(genotype, self.arch["cell"].device),)

    def forward(self, x: torch.Tensor, op_weights: tuple[torch.Tensor] | None = None) -> torch.Tensor:
        return self.logits(x, (self.op_weights() if op_weights is None else op_weights)[0])


class NB201Network(_Macro):
    """The network a NAS-Bench-201 genotype builds. ``forward`` returns ``(logits, None)``."""

    def __init__(self, genotype: NB201Genotype, C: int = 16, num_classes: int = 10, layers: int = 5, in_channels: int = 3):
        super().__init__(C, num_classes, layers, in_channels, [(op,) for op in genotype.edges], affine=True)
        self.genotype = genotype
        self.drop_path_prob = 0.0  # the benchmark trains without drop-path

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.logits(x, None), None
