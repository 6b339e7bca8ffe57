"""DARTS-family genotypes: the discrete architecture a search derives, its JSON form (which
names its space) and the built-in references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sddarts.search_spaces.darts_space import DARTS, NUM_EDGES, STEPS, CellSpace, edge_index
from sddarts.search_spaces.errors import GenotypeError
from sddarts.search_spaces.operations import SHORT_NAMES
from sddarts.search_spaces.robust_darts import S1, S2, S3, S4

CELL_SPACES: dict[str, CellSpace] = {s.name: s for s in (DARTS, S1, S2, S3, S4)}

Edge = tuple[str, int]  # (primitive, input state index)




def _whole(value, what: str) -> int:
    """``value`` as an int, refusing anything that is not a whole number (1.7, True, "3")."""
    try:
        whole = int(value)
    except (TypeError, ValueError, OverflowError):
        whole = None
    if whole is None or isinstance(value, (bool, str)) or whole != value:
        raise GenotypeError(f"{what} {value!r} must be a whole number")
    return whole


@dataclass(frozen=True)
class Genotype:
    """Two cells, each as 2 (op, input) pairs per intermediate node, plus the concatenated nodes,
    in the DARTS-family space ``space`` (darts, s1-s4)."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    normal_concat: tuple[int, ...] = field(default=(2, 3, 4, 5))
    reduce_concat: tuple[int, ...] = field(default=(2, 3, 4, 5))
    space: str = "darts"

    cells = ("normal", "reduce")

    def __post_init__(self) -> None:
        if self.space not in CELL_SPACES:
            raise GenotypeError(f"genotype.space {self.space!r} is not a DARTS-family space ({', '.join(CELL_SPACES)})")
        space = CELL_SPACES[self.space]
        for cell in ("normal", "reduce"):
            edges = tuple((str(op), _whole(src, f"genotype.{cell}[{i}]: input"))
                          for i, (op, src) in enumerate(getattr(self, cell)))
            object.__setattr__(self, cell, edges)
            if len(edges) != 2 * STEPS:
                raise GenotypeError(f"genotype.{cell} needs {2 * STEPS} (op, input) pairs, got {len(edges)}")
            for i, (op, src) in enumerate(edges):
                if not 0 <= src < 2 + i // 2:
                    raise GenotypeError(f"genotype.{cell}[{i}]: input {src} must be in [0, {1 + i // 2}] for node {i // 2}")
                offered = [o for o in space.ops(cell)[edge_index(src, i // 2)] if o != "none"]
                if op not in offered:
                    raise GenotypeError(f"genotype.{cell}[{i}]: op {op!r} is not offered on edge {src}->{2 + i // 2} "
                                        f"of space {self.space}; use one of {', '.join(offered)}")
        for cell in ("normal_concat", "reduce_concat"):
            concat = tuple(_whole(i, f"genotype.{cell}: node") for i in getattr(self, cell))
            object.__setattr__(self, cell, concat)
            if not concat or any(not 2 <= i < 2 + STEPS for i in concat):
                raise GenotypeError(f"genotype.{cell} must list node states in [2, {1 + STEPS}], got {list(concat)}")

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Genotype":
        try:
            return cls(
                normal=tuple(tuple(e) for e in data["normal"]),
                reduce=tuple(tuple(e) for e in data["reduce"]),
                normal_concat=tuple(data.get("normal_concat", (2, 3, 4, 5))),
                reduce_concat=tuple(data.get("reduce_concat", (2, 3, 4, 5))),
                space=str(data.get("space", "darts")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, GenotypeError):
                raise
            raise GenotypeError(f"malformed genotype ({type(exc).__name__}: {exc}); expected keys normal, reduce, *_concat") from exc

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def short(self) -> str:
        """A one-line form: ``N[sep3:0,sep3:1|...] R[max3:0,...]``, one ``|`` group per node."""

        def cell(edges: tuple[Edge, ...]) -> str:
            pairs = [f"{SHORT_NAMES[op]}:{src}" for op, src in edges]
            return "|".join(",".join(pairs[i : i + 2]) for i in range(0, len(pairs), 2))

        return f"N[{cell(self.normal)}] R[{cell(self.reduce)}]"

    def to_python(self) -> str:
        """``genotype.py``: the genotype as DARTS' ``genotypes.py`` writes one (its ``Genotype``
        namedtuple, ``(op, input)`` pairs, ``range(2, 6)`` for the full concatenation)."""

        def concat(nodes: tuple[int, ...]) -> str:
            full = tuple(range(2, 2 + STEPS))
            return f"range(2, {2 + STEPS})" if nodes == full else repr(list(nodes))

        def edges(cell: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {src})" for op, src in cell) + "]"

        return (f"# Derived by sddarts in space {self.space!r}; paste the last line into DARTS' genotypes.py.\n"
                "from collections import namedtuple\n\n"
                "Genotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')\n\n"
                f"SDDARTS = Genotype(normal={edges(self.normal)}, normal_concat={concat(self.normal_concat)}, "
                f"reduce={edges(self.reduce)}, reduce_concat={concat(self.reduce_concat)})\n")

    def ops_of(self, cell: str) -> list[str]:
        """The chosen op of every edge of ``cell``."""
        return [op for op, _ in getattr(self, cell)]

    def graph(self, cell: str) -> tuple[dict[int, str], list[tuple[str, int, int]], list[int]]:
        """For pictures: (input nodes and their labels, (op, from, to) edges, nodes joined into the output)."""
        edges = [(op, src, 2 + i // 2) for i, (op, src) in enumerate(getattr(self, cell))]
        return {0: "c_{k-2}", 1: "c_{k-1}"}, edges, list(getattr(self, f"{cell}_concat"))


def _derive_cell(weights: torch.Tensor, edge_ops: tuple[tuple[str, ...], ...]) -> tuple[Edge, ...]:
    """DARTS rule: per node, the 2 inputs whose strongest non-``none`` op is strongest."""
    none = torch.tensor([[op == "none" for op in ops] for ops in edge_ops])
    weights = weights.masked_fill(none, -1.0)
    edges: list[Edge] = []
    for node in range(STEPS):
        rows = [edge_index(src, node) for src in range(node + 2)]
        strength, best_op = weights[rows].max(dim=1)
        # stable sort: ties go to the lower input index, as in the reference implementation
        order = sorted(range(node + 2), key=lambda src: -float(strength[src]))[:2]
        edges += [(edge_ops[rows[src]][int(best_op[src])], src) for src in order]
    return tuple(edges)


def derive_genotype(alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor, space: str = "darts") -> Genotype:
    """Discretizes alpha (each ``(14, ops)``) of a DARTS-family space into a genotype."""
    with torch.no_grad():
        return derive_from_weights(F.softmax(alpha_normal.detach().float(), dim=-1),
                                   F.softmax(alpha_reduce.detach().float(), dim=-1), space)


def derive_from_weights(w_normal: torch.Tensor, w_reduce: torch.Tensor, space: str = "darts") -> Genotype:
    """DARTS' rule on op weights (softmax(alpha), or PC-DARTS' softmax(alpha) * edge weights)."""
    cells = CELL_SPACES[space]
    return Genotype(normal=_derive_cell(w_normal.detach().float().cpu(), cells.normal_ops),
                    reduce=_derive_cell(w_reduce.detach().float().cpu(), cells.reduce_ops), space=space)


def genotype_weights(genotype: Genotype, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot op weights ``(14, ops)`` per cell that select exactly the genotype's edges and ops."""
    space = CELL_SPACES[genotype.space]

    def cell(name: str) -> torch.Tensor:
        w = torch.zeros(NUM_EDGES, space.num_ops, device=device)
        for i, (op, src) in enumerate(getattr(genotype, name)):
            row = edge_index(src, i // 2)
            w[row, space.ops(name)[row].index(op)] = 1.0
        return w

    return cell("normal"), cell("reduce")


# The cells found by DARTS (Liu et al., 2019), first and second order.
DARTS_V1 = Genotype(
    normal=(("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)),
)
DARTS_V2 = Genotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
)
BUILTIN_GENOTYPES: dict[str, Genotype] = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2}
