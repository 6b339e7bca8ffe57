"""RobustDARTS' spaces S1-S4 (Zela et al., ICLR 2020, "Understanding and Robustifying
Differentiable Architecture Search", ``src/spaces.py``): DARTS' macro network and cells with
fewer candidate ops per edge, built so that DARTS' failure shows."""

from __future__ import annotations

from sddarts.search_spaces.darts_space import NUM_EDGES, CellSpace

_SKIP, _MAX, _AVG = "skip_connect", "max_pool_3x3", "avg_pool_3x3"
_SEP3, _DIL3, _DIL5 = "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"

# S1: two ops per edge, chosen per edge (the ops that were most important in DARTS' search).
S1 = CellSpace(
    "s1",
    normal_ops=((_SKIP, _DIL3), (_SKIP, _DIL5), (_SKIP, _DIL5), (_SKIP, _SEP3), (_SKIP, _DIL3),
                (_MAX, _SKIP), (_SKIP, _SEP3), (_SKIP, _SEP3), (_SKIP, _DIL3), (_SKIP, _SEP3),
                (_MAX, _SKIP), (_SKIP, _DIL3), (_DIL3, _DIL5), (_DIL3, _DIL5)),
    reduce_ops=((_MAX, _AVG), (_MAX, _DIL3), (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5),
                (_MAX, _AVG), (_MAX, _SEP3), (_SKIP, _DIL3), (_SKIP, _DIL5), (_MAX, _AVG),
                (_MAX, _AVG), (_SKIP, _DIL5), (_SKIP, _DIL5), (_SKIP, _DIL5)),
    description="RobustDARTS S1: two ops per edge, fixed per edge",
)
S2 = CellSpace("s2", NUM_EDGES * ((_SKIP, _SEP3),), NUM_EDGES * ((_SKIP, _SEP3),),
               "RobustDARTS S2: {skip_connect, sep_conv_3x3} on every edge")
S3 = CellSpace("s3", NUM_EDGES * (("none", _SKIP, _SEP3),), NUM_EDGES * (("none", _SKIP, _SEP3),),
               "RobustDARTS S3: {none, skip_connect, sep_conv_3x3} on every edge")
S4 = CellSpace("s4", NUM_EDGES * (("noise", _SEP3),), NUM_EDGES * (("noise", _SEP3),),
               "RobustDARTS S4: {noise, sep_conv_3x3} on every edge (noise outputs N(0, 1))")
