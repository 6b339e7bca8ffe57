"""The DARTS CNN cell search space: ops, the supernet, genotypes and the networks they build."""

from sddarts.search_spaces.genotypes import (
    BUILTIN_GENOTYPES,
    Genotype,
    derive_genotype,
    load_genotype,
)
from sddarts.search_spaces.network import DiscreteNetwork
from sddarts.search_spaces.operations import PRIMITIVES
from sddarts.search_spaces.supernet import Supernet

__all__ = [
    "BUILTIN_GENOTYPES",
    "DiscreteNetwork",
    "Genotype",
    "PRIMITIVES",
    "Supernet",
    "derive_genotype",
    "load_genotype",
]
