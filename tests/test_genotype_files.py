"""genotype.py: each space's derived cell as its family's own code writes it; the genotype protocol."""

from collections import namedtuple

import pytest

from sddarts.search_spaces import BUILTIN_GENOTYPES
from sddarts.search_spaces.nb201 import NB201Genotype
from sddarts.search_spaces.genotype_protocol import CellGenotype
from sddarts.search_spaces.genotypes import Genotype

# quark0/darts cnn/genotypes.py, verbatim
DARTS_GENOTYPES_PY = """
from collections import namedtuple

Genotype = namedtuple('Genotype', 'normal normal_concat reduce reduce_concat')

DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])
"""


def _run(text: str) -> dict:
    namespace: dict = {}
    exec(compile(text, "genotype.py", "exec"), namespace)
    return namespace


def test_genotype_py_is_what_darts_genotypes_py_holds():
    ours = _run(BUILTIN_GENOTYPES["DARTS_V2"].to_python())["SDDARTS"]
    theirs = _run(DARTS_GENOTYPES_PY)["DARTS_V2"]
    assert ours._fields == theirs._fields == ("normal", "normal_concat", "reduce", "reduce_concat")
    assert ours.normal == theirs.normal and ours.reduce == theirs.reduce
    assert list(ours.normal_concat) == theirs.normal_concat and list(ours.reduce_concat) == theirs.reduce_concat
    # the last line pasted into DARTS' own file, against DARTS' own namedtuple
    line = BUILTIN_GENOTYPES["DARTS_V2"].to_python().strip().splitlines()[-1]
    pasted = _run(DARTS_GENOTYPES_PY + line + "\n")["SDDARTS"]
    assert pasted == ours and type(pasted).__name__ == "Genotype"


def test_a_partial_concat_is_written_as_a_list_and_round_trips():
    g = Genotype(normal=BUILTIN_GENOTYPES["DARTS_V2"].normal, reduce=BUILTIN_GENOTYPES["DARTS_V2"].reduce,
                 normal_concat=(2, 5))
    back = _run(g.to_python())["SDDARTS"]
    assert back.normal_concat == [2, 5] and list(back.reduce_concat) == [2, 3, 4, 5]
    assert Genotype(normal=tuple(back.normal), reduce=tuple(back.reduce), normal_concat=tuple(back.normal_concat),
                    reduce_concat=tuple(back.reduce_concat)) == g


def test_nb201_genotype_py_holds_the_benchmarks_string():
    g = NB201Genotype(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "skip_connect"))
    arch = _run(g.to_python())["ARCH"]
    assert arch == g.arch_str() and NB201Genotype.from_arch_str(arch) == g
    from nats_bench.genotype_utils import topology_str2structure

    assert topology_str2structure(arch).tostr() == arch  # the benchmark's own parser takes it


@pytest.mark.parametrize("genotype", [BUILTIN_GENOTYPES["DARTS_V2"], NB201Genotype(("skip_connect",) * 6)],
                         ids=["darts", "nb201"])
def test_every_genotype_satisfies_the_protocol(genotype):
    assert isinstance(genotype, CellGenotype)
    for cell in genotype.cells:
        assert genotype.ops_of(cell) and genotype.graph(cell)[2]
    assert genotype.to_python() and genotype.short() and genotype.to_json()
