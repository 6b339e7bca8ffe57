"""The collapse lab's spaces: RobustDARTS S1-S4 and NAS-Bench-201 (parameter counts op by op,
genotypes that name their space, the benchmark's own string parser), the collapse diagnostics and
DARTS-ES early stopping."""

import json

import pytest
import torch
from torch import nn

from sddarts.search_spaces import SPACES, genotype_from_json, get_space, load_genotype
from sddarts.search_spaces.nb201 import NB201Genotype
from sddarts.search_spaces.errors import GenotypeError
from sddarts.search_spaces.darts_space import STEPS, edge_index
from sddarts.search_spaces.operations import FactorizedReduce, make_op
from sddarts.search_spaces.robust_darts import S1, S2, S3, S4
from sddarts.search_spaces import check_fits
from sddarts.trainables.sd_darts.early_stop import local_averages, sharpness_stop
from sddarts.trainables.sd_darts.measure import collapse_stats

DARTS_FAMILY = ["darts", "s1", "s2", "s3", "s4"]


def _n(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _darts_family_params(space, C, layers, in_channels, classes):
    """The supernet's w, summed op by op from the stand-alone reference ops of every edge."""
    total = in_channels * 3 * C * 9 + 2 * 3 * C  # stem conv + affine BN
    c_pp = c_p = 3 * C
    c, reduction_prev = C, False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c = 2 * c if reduction else c
        total += _n(FactorizedReduce(c_pp, c, affine=False)) if reduction_prev else c_pp * c
        total += c_p * c
        edge_ops = space.ops("reduce" if reduction else "normal")
        for node in range(STEPS):
            for src in range(node + 2):
                stride = 2 if reduction and src < 2 else 1
                total += sum(_n(make_op(op, c, stride, affine=False)) for op in edge_ops[edge_index(src, node)])
        c_pp, c_p, reduction_prev = c_p, 4 * c, reduction
    return total + c_p * classes + classes


@pytest.mark.parametrize("name", DARTS_FAMILY)
def test_darts_family_supernet_parameters_equal_the_sum_of_their_ops(name):
    from sddarts.search_spaces.genotypes import CELL_SPACES

    net = get_space(name).supernet(16, 10, 8, 3)
    assert sum(p.numel() for p in net.w_parameters()) == _darts_family_params(CELL_SPACES[name], 16, 8, 3, 10)
    assert [tuple(a.shape) for a in net.alphas()] == [(14, CELL_SPACES[name].num_ops)] * 2


def test_s2_parameters_by_hand():
    """S2 at C=4, 3 cells (reductions at cells 1 and 2), 1 input channel, 10 classes."""
    sep3 = lambda c: 2 * (9 * c + c * c)  # two (depthwise 3x3 + pointwise) blocks, BN without affine
    fr = lambda c_in, c: 2 * c_in * (c // 2)  # FactorizedReduce: two 1x1 convs to c/2
    stem = 1 * 12 * 9 + 2 * 12
    cell0 = 12 * 4 + 12 * 4 + 14 * sep3(4)  # normal, C=4: preprocess 1x1 convs, 14 sep3 edges, skips free
    cell1 = 12 * 8 + 16 * 8 + 14 * sep3(8) + 8 * fr(8, 8)  # reduce, C=8: the 8 edges from the inputs skip with FR
    cell2 = fr(16, 16) + 32 * 16 + 14 * sep3(16) + 8 * fr(16, 16)  # reduce after reduce: pre0 is FR
    classifier = 64 * 10 + 10
    net = get_space("s2").supernet(4, 10, 3, 1)
    assert sum(p.numel() for p in net.w_parameters()) == stem + cell0 + cell1 + cell2 + classifier


def _nb201_params(C, N, in_channels, classes, supernet: bool):
    conv_bn = 0 if supernet else 2  # the supernet's cell BN has no affine parameters
    cell = lambda c: (c * c + conv_bn * c) + (9 * c * c + conv_bn * c)  # per edge: nor_conv_1x1, nor_conv_3x3
    residual = lambda ci, co: 9 * ci * co + 2 * co + 9 * co * co + 2 * co + ci * co
    total = in_channels * C * 9 + 2 * C
    total += N * 6 * cell(C) + residual(C, 2 * C) + N * 6 * cell(2 * C) + residual(2 * C, 4 * C) + N * 6 * cell(4 * C)
    return total + 2 * 4 * C + 4 * C * classes + classes


def test_nb201_supernet_and_network_parameters_by_hand():
    net = get_space("nb201").supernet(16, 10, 5, 3)
    assert sum(p.numel() for p in net.w_parameters()) == _nb201_params(16, 5, 3, 10, supernet=True)
    assert [tuple(a.shape) for a in net.alphas()] == [(6, 5)]
    convs = NB201Genotype(("nor_conv_1x1", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3"))
    discrete = get_space("nb201").network(convs, 16, 10, 5, 3)
    # 3 edges of each conv kind: half of the supernet's conv weights, plus affine BN in the cells
    full = _nb201_params(16, 5, 3, 10, supernet=False)
    per_stage = lambda c: 5 * 3 * (c * c + 2 * c + 9 * c * c + 2 * c)
    assert sum(p.numel() for p in discrete.parameters()) == full - sum(per_stage(c) for c in (16, 32, 64))


def test_nb201_strings_parse_with_the_benchmarks_own_parser():
    from nats_bench.genotype_utils import topology_str2structure

    torch.manual_seed(0)
    for _ in range(20):
        g = get_space("nb201").supernet(4, 10, 1, 1).derive()  # random alpha: any op, none included
        structure = topology_str2structure(g.arch_str())
        assert structure.tostr() == g.arch_str()
        assert [op for node in structure.nodes for op, _ in node] == list(g.edges)
        assert [src for node in structure.nodes for _, src in node] == [0, 0, 1, 0, 1, 2]
        assert NB201Genotype.from_arch_str(structure.tostr()) == g
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert load_genotype(text).arch_str() == text == topology_str2structure(text).tostr()


def test_genotypes_name_their_space_and_refuse_the_wrong_one(tmp_path):
    for name in SPACES:
        g = get_space(name).supernet(4, 10, 3, 1).derive()
        data = json.loads(g.to_json())
        assert data["space"] == name
        assert genotype_from_json(g.to_json()) == g
        path = tmp_path / f"{name}.json"
        path.write_text(g.to_json())
        assert load_genotype(path) == g
        check_fits(g, name)
        other = "nb201" if name != "nb201" else "darts"
        with pytest.raises(GenotypeError, match=f"genotype is from space '{name}', not '{other}'"):
            check_fits(g, other)
    s2 = json.loads(get_space("s2").supernet(4, 10, 3, 1).derive().to_json())
    s2["normal"][0][0] = "dil_conv_3x3"
    with pytest.raises(GenotypeError, match="op 'dil_conv_3x3' is not offered on edge .* of space s2; use one of skip_connect, sep_conv_3x3"):
        genotype_from_json(json.dumps(s2))
    with pytest.raises(GenotypeError, match="unknown space 'nb301'"):
        genotype_from_json('{"space": "nb301"}')
    with pytest.raises(GenotypeError, match="needs 3 node groups"):
        genotype_from_json('{"space": "nb201", "arch": "|skip_connect~0|"}')
    old = json.loads(load_genotype("DARTS_V2").to_json())
    del old["space"]  # files written before spaces existed are DARTS genotypes
    assert genotype_from_json(json.dumps(old)).space == "darts"


def test_s1_ops_differ_per_edge_and_its_genotypes_use_only_offered_ops():
    assert S1.ops("normal")[0] == ("skip_connect", "dil_conv_3x3") and S1.ops("reduce")[0] == ("max_pool_3x3", "avg_pool_3x3")
    assert len(set(S1.ops("normal"))) > 1 and S1.num_ops == S2.num_ops == S4.num_ops == 2 and S3.num_ops == 3
    torch.manual_seed(1)
    for _ in range(5):
        net = get_space("s1").supernet(4, 10, 3, 1)
        with torch.no_grad():
            for a in net.alphas():
                a.normal_()
        g = net.derive()
        for cell in ("normal", "reduce"):
            for i, (op, src) in enumerate(getattr(g, cell)):
                assert op in S1.ops(cell)[edge_index(src, i // 2)]


def test_s3_derivation_never_picks_none_and_nb201_does():
    net = get_space("s3").supernet(4, 10, 3, 1)
    with torch.no_grad():
        net.alphas()[0][:, 0] = 5.0  # none strongest everywhere
    assert "none" not in net.derive().ops_of("normal")
    nb = get_space("nb201").supernet(4, 10, 1, 1)
    with torch.no_grad():
        nb.alphas()[0][:, 0] = 5.0
    assert nb.derive().edges == ("none",) * 6  # the benchmark's rule keeps none (an empty edge)


def test_noise_ignores_its_input_and_is_standard_normal():
    torch.manual_seed(0)
    op = make_op("noise", 8, 2)
    out = op(torch.full((64, 8, 16, 16), 1e6))
    assert out.shape == (64, 8, 8, 8)
    assert abs(float(out.mean())) < 0.02 and abs(float(out.std()) - 1) < 0.02
    net = get_space("s4").supernet(4, 10, 3, 1)  # the supernet's noise edges are random too
    x = torch.randn(2, 1, 8, 8)
    assert not torch.equal(net(x), net(x))


def test_s2_supernet_is_cheaper_than_darts():
    assert sum(p.numel() for p in get_space("s2").supernet(16, 10, 8, 3).w_parameters()) < \
        sum(p.numel() for p in get_space("darts").supernet(16, 10, 8, 3).w_parameters()) / 2


def test_collapse_stats_count_parameter_free_ops_in_the_normal_cell():
    g = load_genotype("DARTS_V1")  # normal: 5 sep3 and 3 skip
    weights = (torch.full((14, 8), 1 / 8),)
    stats = collapse_stats(g, weights)
    assert stats == {"param_free_share": 3 / 8, "skip_count": 3.0, "alpha_max_mean": pytest.approx(1 / 8)}
    nb = NB201Genotype(("skip_connect", "none", "avg_pool_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1"))
    onehot = get_space("nb201").supernet(4, 10, 1, 1).genotype_weights(nb)
    assert collapse_stats(nb, onehot) == {"param_free_share": 4 / 6, "skip_count": 2.0, "alpha_max_mean": 1.0}


def test_darts_es_stops_on_a_rising_eigenvalue_and_returns_the_look_back_epoch():
    """RobustDARTS' defaults (window 5, factor 1.3, start epoch 10, look-back 4), eigenvalue every
    2 epochs: flat at 0.1 until epoch 20, then growing 40% per report."""
    eig = {e: 0.1 if e <= 20 else 0.1 * 1.4 ** ((e - 20) // 2) for e in range(2, 51, 2)}
    reports, stop_at = [], None
    for epoch, value in eig.items():
        reports.append((epoch, value))
        back = sharpness_stop(reports, window=5, factor=1.3, start_epoch=10, lookback=4)
        if back is not None:
            stop_at = (epoch, back)
            break
    assert stop_at is not None
    epoch, back = stop_at
    averages = dict(local_averages(reports, 5))
    centre = max(averages)
    assert centre == epoch - 2 * 2  # a window of 5 is centred 2 reports back
    assert back == centre - 4 * 2  # the look-back point: 4 reports before the current local average
    assert averages[centre] / averages[back] > 1.3
    earlier = reports[:-1]  # one report less did not stop
    assert sharpness_stop(earlier, 5, 1.3, 10, 4) is None
    flat = [(e, 0.1) for e in range(2, 51, 2)]
    assert all(sharpness_stop(flat[:i], 5, 1.3, 10, 4) is None for i in range(1, len(flat) + 1))
    assert sharpness_stop([(e, 0.1 * 2 ** e) for e in range(1, 8)], 5, 1.3, start_epoch=100, lookback=4) is None


@pytest.mark.parametrize("name", list(SPACES))
def test_describe_sizes_a_genotype_of_every_space(name):
    from sddarts.platform.tracking.registry import check_network, describe
    from sddarts.trainables.config import EVAL_PRESETS, EvalConfig

    torch.manual_seed(0)
    genotype = get_space(name).supernet(4, 10, 3, 1).derive()
    cfg = EvalConfig(**EVAL_PRESETS["digits-demo"])
    check_network(genotype, cfg)
    size = describe(genotype, cfg)
    assert size["space"] == name and size["genotype"] == genotype.short()
    assert size["params"] > 0 and size["flops"] > 0
