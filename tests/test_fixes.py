"""The field's DARTS fixes (DARTS-, beta-DARTS, SDARTS, PC-DARTS): each one's maths on a case small
enough to check by hand, and that all of them off is exactly today's search."""

from __future__ import annotations

import math

import pytest
import torch

from sddarts.platform.commands.parser import build_parser
from sddarts.search_spaces import partial_channels as pc
from sddarts.search_spaces.aux_skip import AuxSkip, aux_skip_coefficient
from sddarts.search_spaces.nb201 import NB201_OPS, NB201Cell
from sddarts.search_spaces.random_arch import random_genotype
from sddarts.search_spaces import get_space
from sddarts.search_spaces.supernet import Supernet
from sddarts.trainables.sd_darts.beta_decay import add_beta_grads, beta_loss, beta_weight
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.sd_darts.epoch import fix_schedules
from sddarts.trainables.sd_darts.perturb import adversarial_probs, clip_rows, perturb_epsilon, random_probs
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.searcher import search_config
from sddarts.trainables.sd_darts.step_stats import StepStats


def test_beta_decay_value_gradient_and_schedule_by_hand():
    a = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]], requires_grad=True)  # logsumexp: log 4, log 2
    b = torch.tensor([[math.log(2.0), math.log(2.0)]], requires_grad=True)  # log 4
    assert float(beta_loss([a, b]).detach()) == pytest.approx((math.log(4) + math.log(2) + math.log(4)) / 3)
    grads = [torch.zeros(2, 2), torch.zeros(1, 2)]
    value = add_beta_grads(grads, [a, b], weight=3.0)
    assert float(value) == pytest.approx((2 * math.log(4) + math.log(2)) / 3)
    # d/d alpha = weight * softmax(alpha_e) / E, with E = 3 edges over both cells
    torch.testing.assert_close(grads[0], torch.tensor([[0.25, 0.75], [0.5, 0.5]]) * 3.0 / 3)
    torch.testing.assert_close(grads[1], torch.tensor([[0.5, 0.5]]) * 3.0 / 3)
    assert a.grad is None  # the regulariser adds to the step's gradients, never to .grad
    assert beta_weight(50, 10, 100) == pytest.approx(5.0) and beta_weight(50, 0, 100) == 0.0


def test_aux_skip_decays_linearly_and_adds_an_identity_outside_the_softmax():
    assert [aux_skip_coefficient(1.0, ep, 50) for ep in (0, 1, 49)] == pytest.approx([1.0, 0.98, 0.02])
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(AuxSkip(4, 3, 1)(x), x.unsqueeze(1))
    assert AuxSkip(4, 3, 2)(torch.randn(2, 4, 6, 6)).shape == (2, 3, 4, 3, 3)  # a FactorizedReduce per stride-2 edge
    # NAS-Bench-201's cell with every edge on `none`: only the skips carry x. node1 = c x,
    # node2 = c x + c node1, node3 = c x + c node1 + c node2 = (c + 2c^2 + c^3) x
    cell = NB201Cell(4, [NB201_OPS] * 6, affine=False, aux_skip=True)
    none = torch.zeros(6, len(NB201_OPS))
    none[:, NB201_OPS.index("none")] = 1.0
    c = 0.3
    torch.testing.assert_close(cell(x, none, c), (c + 2 * c**2 + c**3) * x)
    assert torch.equal(cell(x, none, 0.0), torch.zeros_like(x))


def test_sdarts_perturbation_stays_within_epsilon_and_never_touches_alpha():
    assert perturb_epsilon(0.3, 0, 50) == pytest.approx(0.03) and perturb_epsilon(0.3, 49, 50) == pytest.approx(0.2946)
    # clip by hand: clamp to [0, 1], renormalise; an all-negative row becomes its argmax
    torch.testing.assert_close(clip_rows(torch.tensor([[0.5, -0.1, 1.5], [-0.2, -0.1, -0.3]])),
                               torch.tensor([[1 / 3, 0.0, 2 / 3], [0.0, 1.0, 0.0]]))  # [0.5, 0, 1] / 1.5
    probs = (torch.softmax(torch.randn(6, 5), -1),)
    torch.manual_seed(7)
    out = random_probs(probs, 0.1)
    torch.manual_seed(7)
    delta = torch.empty_like(probs[0]).uniform_(-0.1, 0.1)
    assert delta.abs().max() <= 0.1 and torch.equal(out[0], clip_rows(probs[0] + delta))
    cfg = search_config(preset="collapse-demo", C=4, layers=1, perturb="adversarial", vote_count=0)
    net = get_space("nb201").supernet(4, 10, 1, 1)
    state = SearchState.create(cfg, net)
    state.perturb_epsilon = 0.2
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    alpha = net.alphas()[0].detach().clone()
    clean = net.op_weights()[0].detach()
    adv = state.w_step_weights(x, y)[0]
    assert torch.equal(net.alphas()[0], alpha) and net.alphas()[0].grad is None and net.training
    assert torch.allclose(adv.sum(-1), torch.ones(6)) and (adv >= 0).all()

    def loss_at(p):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(net.eval()(x, net.op_weights(p)), y)

    assert float(loss_at((adv,))) >= float(loss_at((clean,))) - 1e-6  # the attack never lowers the loss
    net.train()
    # a loss that any move from the clean weights lowers: the attack gives the clean weights back
    centre = probs[0]
    same = adversarial_probs(lambda p: -((p[0] - centre) ** 2).sum(), probs, 0.1)
    assert torch.equal(same[0], centre)


def test_partial_channels_pass_a_quarter_through_the_ops_then_shuffle():
    x = torch.arange(8.0).view(1, 8, 1, 1).expand(1, 8, 2, 2).contiguous()
    mixed = torch.full((1, 1, 2, 2, 2), -1.0)  # what the ops made of channels 0, 1
    out = pc.join(mixed, x, 4, 1, torch.tensor([[0.5, 0.5]]))  # this edge's weights sum to 1
    # cat [m, m, x2..x7] -> 4 groups of 2 -> transposed: m, x2, x4, x6, m, x3, x5, x7
    assert out[0, 0, :, 0, 0].tolist() == [-1, 2, 4, 6, -1, 3, 5, 7]
    assert pc.join(mixed[..., :1, :1], x, 4, 2, torch.tensor([[1.0]])).shape == (1, 1, 8, 1, 1)  # bypass max-pooled
    norm = pc.edge_normalisation(torch.randn(14), pc.DARTS_NODE_EDGES)
    assert [float(norm[a:b].sum()) for a, b in pc.DARTS_NODE_EDGES] == pytest.approx([1.0] * 4)
    net = Supernet(C=8, num_classes=10, layers=3, in_channels=1, partial_channels=4)
    assert {edges.c for cell in net.cells for edges in cell.states} == {2, 4, 8}  # C/K of cells at 8, 16, 32
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert len(net.arch_parameters()) == 4 and len(net.alphas()) == 2


def test_pc_darts_genotype_weighs_edges_by_their_normalisation():
    net = Supernet(C=8, num_classes=10, layers=3, in_channels=1, partial_channels=4)
    sep = net.space.normal_ops[0].index("sep_conv_3x3")
    with torch.no_grad():
        for a in net.alphas():
            a.zero_()
            a[:, sep] = 1.0
            a[2, sep] = 1.5  # node 1: input 0 strongest; inputs 1 and 2 tie
        for e in (net.arch.edge_normal, net.arch.edge_reduce):
            e.zero_()
            e[3], e[4] = -3.0, 3.0  # node 1's edge from state 2 dominates its normalisation
    assert sorted(src for _, src in net.derive().normal[2:4]) == [0, 2]
    plain = Supernet(C=8, num_classes=10, layers=3, in_channels=1)
    with torch.no_grad():
        plain.alpha_normal.copy_(net.alpha_normal)
        plain.alpha_reduce.copy_(net.alpha_reduce)
    assert sorted(src for _, src in plain.derive().normal[2:4]) == [0, 1]  # ties go to the lower input


@pytest.mark.parametrize("space", ["darts", "s3", "nb201"])
def test_every_fix_off_is_exactly_todays_search_step(space):
    """Defaults against every fix's field set to its off value, explicitly: the same modules and
    the same bits after two steps (the off path adds no module, parameter or computation)."""
    def run(**fixes):
        cfg = search_config(preset="collapse-demo", space=space, C=4, layers=3 if space != "nb201" else 1,
                            teacher_interval=1, vote_count=2, **fixes)
        torch.manual_seed(0)
        net = get_space(space).supernet(4, 10, cfg.layers, 1, "batched", cfg.partial_channels, cfg.aux_skip > 0)
        state = SearchState.create(cfg, net)
        fix_schedules(state, 0)
        g = torch.Generator().manual_seed(1)
        for _ in range(2):
            batch = lambda: (torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g))  # noqa: E731
            search_step(state, batch(), batch(), StepStats())
        return net.state_dict()

    today = run()
    off = run(aux_skip=0.0, beta_decay=0.0, perturb="none", partial_channels=1)
    assert today.keys() == off.keys() and all(torch.equal(today[k], off[k]) for k in today)
    on = run(aux_skip=1.0)  # a fix on changes the search: the test can fail
    assert set(on) >= set(today) and any(not torch.equal(on[k], today[k]) for k in today)
    assert (set(on) > set(today)) == (space != "nb201")  # stride-2 skips have weights; nb201's are identities


@pytest.mark.parametrize("space", ["darts", "s1", "s4", "nb201"])
def test_random_genotypes_are_seeded_valid_and_cover_the_space(space):
    draws = [random_genotype(space, seed=3, draw=d) for d in range(12)]
    assert draws[0] == random_genotype(space, seed=3, draw=0)
    assert len({g.to_json() for g in draws}) > 6  # not one cell over and over
    assert {g.space for g in draws} == {space}  # each passed its genotype class's checks


def test_fix_flags_are_in_help_and_bad_values_are_one_line(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--aux-skip", "--beta-decay", "--beta-decay-epochs", "--perturb", "--perturb-epsilon",
                 "--partial-channels"):
        assert flag in help_text
    with pytest.raises(ConfigError, match="C must be divisible by partial_channels"):
        search_config(C=6, partial_channels=4)
    with pytest.raises(ConfigError, match="perturb must be one of none, random, adversarial"):
        search_config(perturb="pgd")
    assert search_config(aux_skip=1.0, perturb="random").fixes == ("aux_skip", "perturb")


def test_a_sweep_space_can_add_the_fixes():
    from sddarts.platform.tuning.sweep_space import to_distributions

    space = {"aux_skip": {"type": "float", "low": 0.0, "high": 1.0}, "perturb": {"type": "categorical",
             "choices": ["none", "random", "adversarial"]}, "partial_channels": {"type": "categorical", "choices": [1, 2, 4]},
             "beta_decay": {"type": "float", "low": 0.0, "high": 50.0}}
    dists = to_distributions(space, search_config(C=8))
    assert set(dists) == set(space) and list(dists["perturb"].choices) == ["none", "random", "adversarial"]


@pytest.mark.parametrize("space", ["darts", "s1", "s4", "nb201"])
def test_every_fix_at_once_searches_in_every_space(space):
    from sddarts.trainables.sd_darts.searcher import Searcher

    searcher = Searcher(preset="collapse-demo", space=space, C=8, layers=3 if space != "nb201" else 1, epochs=2,
                        steps_per_epoch=2, sharpness_every=0, aux_skip=1.0, beta_decay=1.0, perturb="adversarial",
                        partial_channels=4, say=lambda line: None)
    last = searcher.run()[-1]
    assert (last["aux_skip_coef"], last["beta_weight"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert last["perturb_epsilon"] == pytest.approx(0.165) and math.isfinite(last["beta_loss"])
    assert searcher.genotype.space == space and math.isfinite(last["val_acc"])
