"""Search spaces: the DARTS cell space, RobustDARTS' S1-S4 and NAS-Bench-201's cell; ops, supernets,
genotypes and the networks they build."""

from sddarts.search_spaces.genotypes import Genotype, GenotypeError, derive_genotype
from sddarts.search_spaces.nb201 import NB201Genotype
from sddarts.search_spaces.network import DiscreteNetwork
from sddarts.search_spaces.operations import PARAM_FREE, PRIMITIVES
from sddarts.search_spaces.spaces import (
    BUILTIN_GENOTYPES,
    SPACES,
    get_space,
    genotype_from_dict,
    genotype_from_json,
    load_genotype,
)
from sddarts.search_spaces.supernet import Supernet

__all__ = [
    "BUILTIN_GENOTYPES",
    "DiscreteNetwork",
    "Genotype",
    "GenotypeError",
    "NB201Genotype",
    "PARAM_FREE",
    "PRIMITIVES",
    "SPACES",
    "Supernet",
    "derive_genotype",
    "genotype_from_dict",
    "genotype_from_json",
    "get_space",
    "load_genotype",
]
