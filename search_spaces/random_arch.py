"""Architectures drawn uniformly at random from a space: the random-sampling baseline that the NAS
best-practice checklist (Lindauer & Hutter, JMLR 2020) asks every comparison for.

DARTS family: per cell and node, 2 distinct inputs out of the node's candidates, each with an op
drawn from what that edge offers (``none`` excluded, as DARTS' derivation excludes it). NAS-Bench-201:
each of the 6 edges an op out of all 5 (``none`` included: the benchmark's 15,625 cells).
A draw is fixed by ``(seed, draw)``.
"""

from __future__ import annotations

import numpy as np

from sddarts.search_spaces.darts_space import STEPS, edge_index
from sddarts.search_spaces.genotypes import CELL_SPACES, Genotype
from sddarts.search_spaces.nb201 import EDGES, NB201_OPS, NB201Genotype


def random_genotype(space: str, seed: int, draw: int = 0) -> Genotype | NB201Genotype:
    """Draw number ``draw`` of the uniform sampler seeded with ``seed`` in ``space``."""
    rng = np.random.default_rng([seed, draw])
    if space == "nb201":
        return NB201Genotype(tuple(NB201_OPS[int(rng.integers(len(NB201_OPS)))] for _ in EDGES))
    cells = CELL_SPACES[space]

    def cell(name: str) -> tuple[tuple[str, int], ...]:
        edges = []
        for node in range(STEPS):
            for src in sorted(rng.choice(node + 2, size=2, replace=False).tolist()):
                offered = [op for op in cells.ops(name)[edge_index(src, node)] if op != "none"]
                edges.append((offered[int(rng.integers(len(offered)))], int(src)))
        return tuple(edges)

    return Genotype(normal=cell("normal"), reduce=cell("reduce"), space=space)
