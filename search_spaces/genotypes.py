"""Genotypes: the discrete architecture a search derives, its JSON form and built-in references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from sddarts.search_spaces.operations import PRIMITIVES, SHORT_NAMES
from sddarts.search_spaces.supernet import STEPS, edge_index

Edge = tuple[str, int]  # (primitive, input state index)


class GenotypeError(ValueError):
    """A genotype that is malformed or does not fit the DARTS cell space."""


@dataclass(frozen=True)
class Genotype:
    """Two cells, each as 2 (op, input) pairs per intermediate node, plus the concatenated nodes."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    normal_concat: tuple[int, ...] = field(default=(2, 3, 4, 5))
    reduce_concat: tuple[int, ...] = field(default=(2, 3, 4, 5))

    def __post_init__(self) -> None:
        for cell in ("normal", "reduce"):
            edges = tuple((str(op), int(src)) for op, src in getattr(self, cell))
            object.__setattr__(self, cell, edges)
            if len(edges) != 2 * STEPS:
                raise GenotypeError(f"genotype.{cell} needs {2 * STEPS} (op, input) pairs, got {len(edges)}")
            for i, (op, src) in enumerate(edges):
                if op not in PRIMITIVES or op == "none":
                    raise GenotypeError(f"genotype.{cell}[{i}]: unknown op {op!r}; use one of {', '.join(PRIMITIVES[1:])}")
                if not 0 <= src < 2 + i // 2:
                    raise GenotypeError(f"genotype.{cell}[{i}]: input {src} must be in [0, {1 + i // 2}] for node {i // 2}")
        for cell in ("normal_concat", "reduce_concat"):
            concat = tuple(int(i) for i in getattr(self, cell))
            object.__setattr__(self, cell, concat)
            if not concat or any(not 2 <= i < 2 + STEPS for i in concat):
                raise GenotypeError(f"genotype.{cell} must list node states in [2, {1 + STEPS}], got {list(concat)}")

    def to_dict(self) -> dict:
        return {
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
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, GenotypeError):
                raise
            raise GenotypeError(f"malformed genotype ({type(exc).__name__}: {exc}); expected keys normal, reduce, *_concat") from exc

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype is not valid JSON: {exc}") from None
        except RecursionError:
            raise GenotypeError("genotype JSON is nested too deeply to be a genotype") from None
        if not isinstance(data, dict):
            raise GenotypeError(f"genotype JSON must be an object with keys normal, reduce (got {type(data).__name__})")
        return cls.from_dict(data)

    def short(self) -> str:
        """A one-line form: ``N[sep3:0,sep3:1|...] R[max3:0,...]``, one ``|`` group per node."""

        def cell(edges: tuple[Edge, ...]) -> str:
            pairs = [f"{SHORT_NAMES[op]}:{src}" for op, src in edges]
            return "|".join(",".join(pairs[i : i + 2]) for i in range(0, len(pairs), 2))

        return f"N[{cell(self.normal)}] R[{cell(self.reduce)}]"


def _derive_cell(weights: torch.Tensor) -> tuple[Edge, ...]:
    """DARTS rule: per node, the 2 inputs whose strongest non-``none`` op is strongest."""
    none = PRIMITIVES.index("none")
    edges: list[Edge] = []
    for node in range(STEPS):
        rows = weights[[edge_index(src, node) for src in range(node + 2)]].clone()
        rows[:, none] = -1.0
        strength, best_op = rows.max(dim=1)
        # stable sort: ties go to the lower input index, as in the reference implementation
        order = sorted(range(node + 2), key=lambda src: -float(strength[src]))[:2]
        edges += [(PRIMITIVES[int(best_op[src])], src) for src in order]
    return tuple(edges)


def derive_genotype(alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor) -> Genotype:
    """Discretizes alpha (each ``(14, 8)``) into a genotype."""
    with torch.no_grad():
        return Genotype(
            normal=_derive_cell(F.softmax(alpha_normal.detach().float().cpu(), dim=-1)),
            reduce=_derive_cell(F.softmax(alpha_reduce.detach().float().cpu(), dim=-1)),
        )


def genotype_weights(genotype: Genotype, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot op weights ``(14, 8)`` per cell that select exactly the genotype's edges and ops."""

    def cell(edges: tuple[Edge, ...]) -> torch.Tensor:
        w = torch.zeros(sum(2 + i for i in range(STEPS)), len(PRIMITIVES), device=device)
        for i, (op, src) in enumerate(edges):
            w[edge_index(src, i // 2), PRIMITIVES.index(op)] = 1.0
        return w

    return cell(genotype.normal), cell(genotype.reduce)


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


def load_genotype(spec: str | Path) -> Genotype:
    """A built-in name (``DARTS_V2``) or the path of a genotype JSON file."""
    if str(spec) in BUILTIN_GENOTYPES:
        return BUILTIN_GENOTYPES[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise GenotypeError(f"genotype {str(spec)!r} is neither a built-in ({', '.join(BUILTIN_GENOTYPES)}) nor a file")
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError) as exc:
        raise GenotypeError(f"genotype file {str(path)!r} is not a readable JSON text file ({type(exc).__name__})") from None
    return Genotype.from_json(text)
