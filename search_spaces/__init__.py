"""Search spaces: the DARTS cell space, RobustDARTS' S1-S4 and NAS-Bench-201's cell, by name
(``--space``): what each one builds, derives and reads. The ops, supernets, genotypes and networks
live in this package's modules; this is the registry that names them.

Every space gives a supernet (``alphas()``, ``op_weights()``, ``w_parameters()``, ``derive()``,
``genotype_weights()``, ``forward(x, op_weights)``), the discrete network a genotype builds
(``forward`` returns ``(logits, aux or None)``) and its genotype type, whose JSON names the space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

from torch import nn

from sddarts.search_spaces import nb201
from sddarts.search_spaces.genotypes import BUILTIN_GENOTYPES as DARTS_BUILTINS
from sddarts.search_spaces.genotypes import CELL_SPACES, Genotype
from sddarts.search_spaces.errors import GenotypeError
from sddarts.search_spaces.nb201 import NB201Genotype, NB201Network, NB201Supernet
from sddarts.search_spaces.network import DiscreteNetwork
from sddarts.search_spaces.supernet import Supernet

AnyGenotype = Union[Genotype, NB201Genotype]


@dataclass(frozen=True)
class SearchSpace:
    """One search space: its name, what it is, and how to build its networks."""

    name: str
    description: str
    cells: tuple[str, ...]
    edge_ops: Callable[[str], tuple[tuple[str, ...], ...]]  # cell -> candidate ops of every edge
    supernet: Callable[..., nn.Module]  # (C, num_classes, layers, in_channels, mixed="batched", partial_channels=1, aux_skip=False)
    network: Callable[..., nn.Module]  # (genotype, C, num_classes, layers, in_channels, auxiliary, image_size)
    genotype_from_dict: Callable[[dict], AnyGenotype]
    min_layers: int = 3


def _darts_family(name: str) -> SearchSpace:
    cells = CELL_SPACES[name]

    def network(genotype, C, num_classes, layers, in_channels, auxiliary=False, image_size=32):
        return DiscreteNetwork(genotype, C, num_classes, layers, in_channels, auxiliary, image_size)

    def supernet(C, num_classes, layers, in_channels, mixed="batched", partial_channels=1, aux_skip=False):
        return Supernet(C, num_classes, layers, in_channels, space=cells, mixed=mixed,
                        partial_channels=partial_channels, aux_skip=aux_skip)

    return SearchSpace(name, cells.description, cells.cells, cells.ops, supernet, network, Genotype.from_dict)


def _nb201_network(genotype, C, num_classes, layers, in_channels, auxiliary=False, image_size=32):
    return NB201Network(genotype, C, num_classes, layers, in_channels)


def _nb201_supernet(C, num_classes, layers, in_channels, mixed="batched", partial_channels=1, aux_skip=False):
    return NB201Supernet(C, num_classes, layers, in_channels, partial_channels, aux_skip)  # edges: MixedOp either way


SPACES: dict[str, SearchSpace] = {name: _darts_family(name) for name in CELL_SPACES}
SPACES["nb201"] = SearchSpace("nb201", "NAS-Bench-201's cell: 4 nodes, 6 edges, 5 ops; N cells per stage",
                              ("cell",), lambda cell: (nb201.NB201_OPS,) * len(nb201.EDGES), _nb201_supernet,
                              _nb201_network, NB201Genotype.from_dict, min_layers=1)

BUILTIN_GENOTYPES: dict[str, AnyGenotype] = dict(DARTS_BUILTINS)


def get_space(name: str) -> SearchSpace:
    """The space called ``name``; a clear error lists the others."""
    if name not in SPACES:
        raise GenotypeError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]


def genotype_from_dict(data: Any) -> AnyGenotype:
    """A genotype of any space from its JSON object (``space`` defaults to darts)."""
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype JSON must be an object with a 'space' and its cells (got {type(data).__name__})")
    space = data.get("space", "darts")
    if not isinstance(space, str) or space not in SPACES:
        raise GenotypeError(f"genotype names an unknown space {space!r}; known spaces: {', '.join(SPACES)}")
    return SPACES[space].genotype_from_dict(data)


def genotype_from_json(text: str) -> AnyGenotype:
    """A genotype of any space from its JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"genotype is not valid JSON: {exc}") from None
    except RecursionError:
        raise GenotypeError("genotype JSON is nested too deeply to be a genotype") from None
    return genotype_from_dict(data)


def load_genotype(spec: str | Path) -> AnyGenotype:
    """A built-in name (``DARTS_V2``), the path of a genotype JSON file, or a NAS-Bench-201
    architecture string (``|nor_conv_3x3~0|+|...|``)."""
    if str(spec) in BUILTIN_GENOTYPES:
        return BUILTIN_GENOTYPES[str(spec)]
    if str(spec).startswith("|") and "~" in str(spec):
        return NB201Genotype.from_arch_str(str(spec))
    path = Path(spec)
    if not path.is_file():
        raise GenotypeError(f"genotype {str(spec)!r} is neither a built-in ({', '.join(BUILTIN_GENOTYPES)}) nor a file")
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError) as exc:
        raise GenotypeError(f"genotype file {str(path)!r} is not a readable JSON text file ({type(exc).__name__})") from None
    return genotype_from_json(text)


def check_fits(genotype: AnyGenotype, space: str) -> None:
    """Raises a clear error when ``genotype`` belongs to another space than ``space``."""
    if genotype.space != space:
        raise GenotypeError(f"genotype is from space {genotype.space!r}, not {space!r}: "
                            f"it only loads into a {genotype.space} supernet or network")
