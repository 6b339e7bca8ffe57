"""The DARTS cell space: ops, the supernet's faithfulness to the reference, genotypes and networks."""

import pytest
import torch
import torch.nn.functional as F

from sddarts.search_spaces import BUILTIN_GENOTYPES
from sddarts.search_spaces.network import DiscreteNetwork
from sddarts.search_spaces.genotypes import Genotype, derive_genotype
from sddarts.search_spaces.operations import PRIMITIVES
from sddarts.search_spaces.supernet import Supernet
from sddarts.search_spaces.darts_space import DARTS
from sddarts.search_spaces.errors import GenotypeError
from sddarts.search_spaces.genotypes import genotype_weights
from sddarts.search_spaces.robust_darts import S1, S3
from sddarts.search_spaces import genotype_from_json, load_genotype
from sddarts.search_spaces.mixed import CONV_OPS, SEP_OPS
from sddarts.search_spaces.network import count_flops, count_parameters
from sddarts.search_spaces.operations import make_op
from sddarts.search_spaces.supernet import NUM_EDGES, STEPS, edge_index


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_op_output_shapes(name, stride):
    x = torch.randn(2, 8, 16, 16)
    assert make_op(name, 8, stride)(x).shape == (2, 8, 16 // stride, 16 // stride)


def test_supernet_matches_reference_darts_parameter_figure():
    net = Supernet(C=16, num_classes=10, layers=8, in_channels=3)
    assert sum(p.numel() for p in net.w_parameters()) == 1_930_618
    assert sum(a.numel() for a in net.alphas()) == 224 == 2 * 14 * 8
    assert NUM_EDGES == 14


def _copy_reference_into(ref, net):
    """Loads the reference DARTS supernet's weights into the batched supernet, edge by edge."""
    with torch.no_grad():
        net.stem.load_state_dict(ref.stem.state_dict())
        net.classifier.load_state_dict(ref.classifier.state_dict())
        net.arch.normal.copy_(ref.alphas_normal)
        net.arch.reduce.copy_(ref.alphas_reduce)
        for rc, nc in zip(ref.cells, net.cells):
            nc.pre0.load_state_dict(rc.preprocess0.state_dict())
            nc.pre1.load_state_dict(rc.preprocess1.state_dict())
            edge_ops = net.space.ops("reduce" if nc.reduction else "normal")
            for src, block in enumerate(nc.states):
                c = block.c
                for e, node in enumerate(range(max(0, src - 1), STEPS)):
                    names = edge_ops[edge_index(src, node)]
                    ops = rc._ops[edge_index(src, node)]._ops
                    for name in names:
                        op = ops[names.index(name)]
                        if name in CONV_OPS:
                            pos, pair = block.conv_slot(name, e)
                            o = block.conv_ops.index(name)
                            first = op[0] if name in SEP_OPS else op
                            block.dw1[o][pos * c:(pos + 1) * c] = first[1].weight
                            block.pw1[pair * c:(pair + 1) * c] = first[2].weight
                            if name in SEP_OPS:
                                block.dw2[block.sep_ops.index(name)][pos * c:(pos + 1) * c] = op[1][1].weight
                                block.pw2[pair * c:(pair + 1) * c] = op[1][2].weight
                        elif name == "skip_connect" and block.stride == 2:
                            pos = block.edges["skip_connect"].index(e)
                            half = slice(pos * c // 2, (pos + 1) * c // 2)
                            block.fr1[half] = op.conv_1.weight
                            block.fr2[half] = op.conv_2.weight


@pytest.mark.parametrize("space", [DARTS, S1, S3], ids=lambda s: s.name)
def test_batched_supernet_computes_exactly_the_reference_darts_maths(space):
    from reference_darts import ReferenceNetwork

    torch.manual_seed(0)
    ref, net = ReferenceNetwork(8, 10, 4, in_channels=3, space=space), Supernet(8, 10, 4, in_channels=3, space=space)
    assert sum(p.numel() for p in net.w_parameters()) == sum(p.numel() for n, p in ref.named_parameters() if "alphas" not in n)
    with torch.no_grad():
        ref.alphas_normal.normal_()
        ref.alphas_reduce.normal_()
    _copy_reference_into(ref, net)
    _same_outputs_and_gradients(ref, net, (ref.alphas_normal, ref.alphas_reduce))


def _same_outputs_and_gradients(ref, net, ref_alphas) -> None:
    """The two supernets give the same logits, and the same gradients in alpha and in the stem."""
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    out_ref, out = ref(x), net(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-5)
    F.cross_entropy(out_ref, y).backward()
    F.cross_entropy(out, y).backward()
    for mine, theirs in zip((net.arch.normal, net.arch.reduce), ref_alphas):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(net.stem[0].weight.grad, ref.stem[0].weight.grad, rtol=1e-3, atol=1e-6)


def _alpha_for(genotype_edges):
    alpha = torch.zeros(NUM_EDGES, len(PRIMITIVES))
    for i, (op, src) in enumerate(genotype_edges):
        alpha[edge_index(src, i // 2), PRIMITIVES.index(op)] = 6.0 - i % 2  # listed order = strength order
    return alpha


def test_derivation_recovers_the_genotype_alpha_encodes():
    g = BUILTIN_GENOTYPES["DARTS_V2"]
    assert derive_genotype(_alpha_for(g.normal), _alpha_for(g.reduce)) == g


def test_derivation_ignores_none_even_when_it_is_strongest():
    alpha = torch.zeros(NUM_EDGES, len(PRIMITIVES))
    none, sep3, skip = (PRIMITIVES.index(n) for n in ("none", "sep_conv_3x3", "skip_connect"))
    alpha[edge_index(0, 0), none] = 10.0  # none dominates edge 0->node0, sep3 second
    alpha[edge_index(0, 0), sep3] = 2.0
    alpha[edge_index(1, 0), skip] = 1.0
    g = derive_genotype(alpha, alpha)
    # softmax weights: the dominant none shrinks sep3's weight below skip's, but sep3 still wins its edge
    assert g.normal[:2] == (("skip_connect", 1), ("sep_conv_3x3", 0))
    assert all(op != "none" for op, _ in g.normal + g.reduce)


def test_genotype_json_round_trip_and_short_form(tmp_path):
    g = BUILTIN_GENOTYPES["DARTS_V1"]
    assert genotype_from_json(g.to_json()) == g
    path = tmp_path / "g.json"
    path.write_text(g.to_json())
    assert load_genotype(path) == g
    assert g.short().startswith("N[sep3:1,sep3:0|skip:0,sep3:1")


@pytest.mark.parametrize("text,needle", [
    ("{", "not valid JSON"),
    ('{"normal": []}', "malformed genotype"),
    ('{"normal": [["conv9", 0]], "reduce": []}', "needs 8"),
])
def test_malformed_genotypes_get_clear_errors(text, needle):
    with pytest.raises(GenotypeError, match=needle):
        genotype_from_json(text)


def test_genotype_rejects_unknown_op_and_bad_input_index():
    edges = list(BUILTIN_GENOTYPES["DARTS_V2"].normal)
    with pytest.raises(GenotypeError, match="op 'conv9' is not offered on edge 0->2 of space darts"):
        Genotype(normal=tuple([("conv9", 0)] + edges[1:]), reduce=tuple(edges))
    with pytest.raises(GenotypeError, match=r"input 3 must be in \[0, 1\]"):
        Genotype(normal=tuple([("sep_conv_3x3", 3)] + edges[1:]), reduce=tuple(edges))


def test_discretized_network_forward_aux_and_drop_path():
    net = DiscreteNetwork(BUILTIN_GENOTYPES["DARTS_V2"], C=8, num_classes=10, layers=5, in_channels=1,
                          auxiliary=True, image_size=8)
    net.drop_path_prob = 0.2
    logits, aux = net.train()(torch.randn(4, 1, 8, 8))
    assert logits.shape == aux.shape == (4, 10)
    logits, aux = net.eval()(torch.randn(4, 1, 8, 8))
    assert logits.shape == (4, 10) and aux is None


def test_darts_v2_parameter_count_matches_the_paper():
    net = DiscreteNetwork(BUILTIN_GENOTYPES["DARTS_V2"], C=36, num_classes=10, layers=20, auxiliary=True)
    params = count_parameters(net)
    assert params == 3_349_342  # the DARTS paper reports 3.3M
    assert abs(params / 1e6 - 3.3) < 0.06
    assert count_parameters(net, exclude_aux=False) > params


def test_flops_are_counted_per_image():
    net = DiscreteNetwork(BUILTIN_GENOTYPES["DARTS_V2"], C=8, num_classes=10, layers=5, in_channels=1, image_size=8)
    flops = count_flops(net, (1, 8, 8))
    assert flops > 0 and count_flops(net, (1, 8, 8)) == flops


def test_one_hot_genotype_weights_equal_the_discretized_cell():
    """The supernet run with a genotype's one-hot weights uses only the kept edges and ops."""
    g = BUILTIN_GENOTYPES["DARTS_V2"]
    wn, wr = genotype_weights(g)
    assert wn.sum() == 8 and wr.sum() == 8
    assert wn[:, PRIMITIVES.index("none")].sum() == 0
    torch.manual_seed(0)
    net = Supernet(4, 10, 3, in_channels=1)
    x = torch.randn(3, 1, 8, 8)
    out1 = net(x, (wn, wr))
    # changing the weights of an op the genotype does not use changes nothing
    with torch.no_grad():
        net.cells[0].states[0].dw1[3].add_(1.0)  # dil_conv_5x5 on state 0: not in DARTS_V2's normal cell
    torch.testing.assert_close(net(x, (wn, wr)), out1)


@pytest.mark.parametrize("space", [DARTS, S1, S3], ids=lambda s: s.name)
def test_the_reference_mixed_op_path_computes_what_the_batched_one_does(space):
    from sddarts.search_spaces.mixed_op import ReferenceStateEdges, copy_weights

    torch.manual_seed(0)
    ref, net = Supernet(8, 10, 4, 3, space=space, mixed="reference"), Supernet(8, 10, 4, 3, space=space)
    assert isinstance(ref.cells[0].states[0], ReferenceStateEdges)
    assert sum(p.numel() for p in ref.w_parameters()) == sum(p.numel() for p in net.w_parameters())
    with torch.no_grad():
        for name in ("stem", "classifier", "arch"):
            getattr(net, name).load_state_dict(getattr(ref, name).state_dict())
        ref.arch.normal.normal_()
        ref.arch.reduce.normal_()
        net.arch.load_state_dict(ref.arch.state_dict())
        for rc, nc in zip(ref.cells, net.cells):
            nc.pre0.load_state_dict(rc.pre0.state_dict())
            nc.pre1.load_state_dict(rc.pre1.state_dict())
            for reference_edges, batched_edges in zip(rc.states, nc.states):
                copy_weights(reference_edges, batched_edges)
    _same_outputs_and_gradients(ref, net, (ref.arch.normal, ref.arch.reduce))


def test_a_search_runs_on_the_reference_mixed_op_path():
    from sddarts.search_spaces.mixed_op import ReferenceStateEdges
    from sddarts.trainables.sd_darts.searcher import Searcher

    searcher = Searcher(preset="digits-demo", epochs=1, steps_per_epoch=2, C=4, layers=3, mixed_op="reference", say=lambda _: None)
    (metrics,) = searcher.run()
    assert isinstance(searcher.net.cells[0].states[0], ReferenceStateEdges)
    assert 0 <= metrics["val_acc"] <= 100 and metrics["genotype"]
