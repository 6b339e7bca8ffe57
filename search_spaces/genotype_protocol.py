"""What every genotype offers, whatever its space: the protocol ``Genotype`` (DARTS family) and
``NB201Genotype`` both satisfy, and the only one the platform, the pictures and the records use."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CellGenotype(Protocol):
    """A derived architecture. ``cells`` names its cells (``("normal", "reduce")`` or ``("cell",)``)."""

    space: str
    cells: tuple[str, ...]

    def short(self) -> str:
        """One line for tags and tables."""

    def ops_of(self, cell: str) -> list[str]:
        """The chosen op of every edge of ``cell``."""

    def graph(self, cell: str) -> tuple[dict[int, str], list[tuple[str, int, int]], list[int]]:
        """For pictures: (input nodes and their labels, (op, from, to) edges, output nodes)."""

    def to_dict(self) -> dict:
        """The JSON form (``genotype.json``), which names the space."""

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict`` as JSON text."""

    def to_python(self) -> str:
        """The architecture as its family's own code writes it (``genotype.py``)."""
