"""The DARTS cell space family: the same macro network and cells, with a list of candidate ops
per edge. The full DARTS space offers all 8 primitives on every edge; RobustDARTS' S1-S4
(``search_spaces/robust_darts.py``) offer fewer."""

from __future__ import annotations

from dataclasses import dataclass

from sddarts.search_spaces.operations import OPS, PRIMITIVES

STEPS = 4  # intermediate nodes per cell
NUM_EDGES = sum(2 + i for i in range(STEPS))  # 14

EdgeOps = tuple[tuple[str, ...], ...]  # the candidate ops of each of the 14 edges


def edge_index(src: int, node: int) -> int:
    """Index of the edge from state ``src`` into intermediate node ``node`` (DARTS ordering)."""
    return sum(2 + i for i in range(node)) + src


@dataclass(frozen=True)
class CellSpace:
    """A DARTS-family space: per cell type, the candidate ops of each of the 14 edges. Every edge
    of a space has the same number of candidates, so alpha is a ``(14, ops)`` matrix per cell."""

    name: str
    normal_ops: EdgeOps
    reduce_ops: EdgeOps
    description: str = ""

    def __post_init__(self) -> None:
        for cell in ("normal", "reduce"):
            edges = self.ops(cell)
            if len(edges) != NUM_EDGES or len({len(e) for e in edges}) != 1:
                raise ValueError(f"space {self.name}: {cell} needs {NUM_EDGES} edges with the same number of ops")
            unknown = {op for e in edges for op in e} - set(OPS)
            if unknown:
                raise ValueError(f"space {self.name}: unknown ops {sorted(unknown)}")

    @property
    def cells(self) -> tuple[str, ...]:
        return ("normal", "reduce")

    @property
    def num_ops(self) -> int:
        return len(self.normal_ops[0])

    def ops(self, cell: str) -> EdgeOps:
        """The candidate ops of each edge of ``cell`` (``normal`` or ``reduce``)."""
        return self.normal_ops if cell == "normal" else self.reduce_ops


DARTS = CellSpace("darts", NUM_EDGES * (PRIMITIVES,), NUM_EDGES * (PRIMITIVES,),
                  "DARTS' CNN cell space (Liu et al., 2019): 8 primitives on each of 14 edges")
