"""The self-distillation maths: KL at temperature T, soft and hard voting, the teacher ring,
teachers that see BatchNorm as the student does, and the Lanczos sharpness."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces import SPACES, get_space
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.sd_darts.distill import TeacherRing, agreement, distill_loss, hard_vote, sd_loss, soft_vote
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.sharpness import top_eigenvalue
from sddarts.trainables.sd_darts.step_stats import StepStats


def test_sd_loss_matches_a_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    teacher = torch.tensor([[0.2, 0.5, 0.3]])
    T = 2.0
    z = [v / T for v in (1.0, 2.0, 0.5)]
    log_s = [v - math.log(sum(math.exp(u) for u in z)) for v in z]
    kl = sum(p * (math.log(p) - ls) for p, ls in zip((0.2, 0.5, 0.3), log_s))
    assert float(sd_loss(logits, teacher, T)) == pytest.approx(T * T * kl, rel=1e-5)


def test_sd_loss_is_zero_when_student_equals_teacher():
    logits = torch.randn(4, 10)
    assert float(sd_loss(logits, torch.softmax(logits / 3.0, -1), 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_soft_vote_is_the_mean_of_probabilities():
    probs = torch.tensor([[[0.6, 0.4]], [[0.2, 0.8]], [[0.1, 0.9]]])
    torch.testing.assert_close(soft_vote(probs), torch.tensor([[0.3, 0.7]]))


def test_hard_vote_takes_the_majority_and_breaks_ties_by_mean_probability():
    probs = torch.tensor([
        [[0.9, 0.1, 0.0], [0.5, 0.4, 0.1]],
        [[0.6, 0.4, 0.0], [0.1, 0.2, 0.7]],
        [[0.2, 0.8, 0.0], [0.3, 0.6, 0.1]],
    ])  # sample 0: votes 0,0,1 -> class 0; sample 1: votes 0,2,1 -> tie, mean probs .30/.40/.30 -> class 1
    torch.testing.assert_close(hard_vote(probs), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


@pytest.mark.parametrize("T", [1.0, 4.0, 8.0])
def test_hard_vote_gradient_is_the_size_of_the_cross_entropys_at_any_temperature(T):
    torch.manual_seed(0)
    logits = torch.randn(16, 10, requires_grad=True)
    labels = torch.randint(0, 10, (16,))
    (g_hard,) = torch.autograd.grad(distill_loss(logits, F.one_hot(labels, 10).float(), T, "hard"), logits)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(logits, labels), logits)
    assert float(g_hard.norm() / g_ce.norm()) == pytest.approx(1.0, abs=1e-6)
    (g_t2,) = torch.autograd.grad(sd_loss(logits, F.one_hot(labels, 10).float(), T), logits)
    if T > 1:  # what the T^2 KL would have given a one-hot target: a gradient growing with T
        assert float(g_t2.norm() / g_ce.norm()) > 0.5 * T


def test_agreement_counts_matching_top_classes():
    student = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
    teacher = torch.tensor([[0.7, 0.3], [0.8, 0.2]])
    assert float(agreement(student, teacher)) == 0.5


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        return self.bn(x) * self.w


def _fill(ring, model, steps):
    taken = []
    for step in range(1, steps):
        with torch.no_grad():
            model.w.fill_(float(step))
        if ring.due(step):
            ring.add(model, step)
            taken.append(step)
    return taken


def test_ring_snapshots_every_interval_and_reuses_the_oldest_teachers_memory():
    model = _Scale()
    ring = TeacherRing(vote_count=2, teacher_interval=3)
    assert _fill(ring, model, 7) == [3, 6]
    modules = [id(t) for t in ring.teachers]
    assert _fill(ring, model, 10)[-1] == 9 and list(ring.snapshot_steps)[-2:] == [6, 9]
    assert [float(t.w) for t in ring.teachers] == [6.0, 9.0]
    assert {id(t) for t in ring.teachers} <= set(modules)  # copied in, not deep-copied anew
    assert all(not p.requires_grad for t in ring.teachers for p in t.parameters())


@pytest.mark.parametrize("teacher_bn", ["batch", "running"])
def test_teachers_do_not_change_batchnorm_statistics(teacher_bn):
    model = _Scale()
    ring = TeacherRing(vote_count=1, teacher_interval=1, teacher_bn=teacher_bn)
    ring.add(model, 1)
    before = ring.teachers[0].bn.running_mean.clone()
    out = ring.predict(torch.randn(8, 2) + 5.0, temperature=1.0)
    assert out.voted.shape == (8, 2)
    torch.testing.assert_close(ring.teachers[0].bn.running_mean, before)
    torch.testing.assert_close(model.bn.running_mean, before)


def test_batch_teachers_normalise_with_the_batch_and_running_teachers_with_the_snapshot():
    model = _Scale()
    model.train()(torch.randn(64, 2) * 3 + 1)  # running statistics far from the next batch's
    x = torch.randn(8, 2) + 5.0
    batch = TeacherRing(1, 1, teacher_bn="batch")
    running = TeacherRing(1, 1, teacher_bn="running")
    batch.add(model, 1)
    running.add(model, 1)
    student = F.softmax(model.train()(x) / 2.0, -1)
    torch.testing.assert_close(batch.predict(x, 2.0).voted, student)
    assert (running.predict(x, 2.0).voted - student).abs().max() > 0.05


def test_vote_count_zero_is_plain_darts():
    ring = TeacherRing(vote_count=0, teacher_interval=1)
    assert not ring.due(1)
    assert len(ring) == 0 and ring.predict(torch.randn(2, 2), 1.0) is None


def test_ring_state_round_trip():
    model = _Scale()
    ring = TeacherRing(vote_count=2, teacher_interval=1)
    _fill(ring, model, 3)
    restored = TeacherRing(vote_count=2, teacher_interval=1)
    restored.load_state_dict(ring.state_dict(), _Scale())
    assert list(restored.snapshot_steps) == [1, 2] and restored.fresh
    assert [float(t.w) for t in restored.teachers] == [1.0, 2.0]


def _space_state(space: str, **overrides) -> tuple[SearchState, tuple, tuple]:
    torch.manual_seed(0)
    net = get_space(space).supernet(4, 10, 5 if space == "nb201" else 3, 1)
    cfg = SearchConfig(space=space, C=4, layers=3, arch_lr=0.03, lr=0.1, vote_count=1, teacher_interval=1000,
                       sd_weight=1.0, temperature=2.0, **overrides)
    state = SearchState.create(cfg, net)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    x_a, y_a = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for _ in range(3):  # running statistics that differ from any one batch's
        search_step(state, (x, y), (x_a, y_a), StepStats())
    return state, (x, y), (x_a, y_a)


def _sd_now(state: SearchState, x, seed: int = 7) -> float:
    torch.manual_seed(seed)  # s4's noise op draws alike in teacher and student
    teacher = state.ring.predict(x, state.cfg.temperature)
    torch.manual_seed(seed)
    with torch.no_grad():
        return float(state.loss(state.net, x, torch.zeros(len(x), dtype=torch.long), teacher).sd)


@pytest.mark.parametrize("space", list(SPACES))
def test_a_fresh_teacher_gives_an_sd_term_of_zero_that_grows_as_the_student_moves_on(space):
    state, batch_w, batch_a = _space_state(space)
    state.ring.add(state.net, state.step)
    assert _sd_now(state, batch_w[0]) < 1e-6 and _sd_now(state, batch_a[0]) < 1e-6
    stats = StepStats()
    search_step(state, batch_w, batch_a, stats)
    totals = stats.totals()
    assert totals["snapshots"] == 1  # first use: the alpha step, with w unchanged since the snapshot
    if space != "s4":  # s4's noise op draws anew in every forward, the student's own included
        assert totals["snapshot_kl"] < 1e-6
    moved = [_sd_now(state, batch_w[0])]
    for _ in range(4):
        search_step(state, batch_w, batch_a, StepStats())
        moved.append(_sd_now(state, batch_w[0]))
    assert moved[0] > 1e-6 and moved[-1] > moved[0]


def test_eval_mode_teachers_give_a_large_term_for_an_identical_copy():
    state, batch_w, _ = _space_state("nb201", teacher_bn="running")
    state.ring.add(state.net, state.step)
    assert _sd_now(state, batch_w[0]) > 1e-3  # the train/eval difference of BatchNorm alone


@pytest.mark.parametrize("distill_on", ["weights", "arch", "both"])
def test_each_update_reports_its_own_sd_term(distill_on):
    state, batch_w, batch_a = _space_state("s3", distill_on=distill_on)
    state.ring.add(state.net, state.step)
    stats = StepStats()
    search_step(state, batch_w, batch_a, stats)
    keys = set(stats.totals())
    assert ("sd_loss" in keys) == (distill_on != "arch")
    assert ("sd_loss_arch" in keys) == (distill_on != "weights")
    assert ("agreement_arch" in keys) == (distill_on != "weights")


def test_lanczos_finds_the_top_eigenvalue_of_a_quadratic_to_within_its_residual():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40))
    eigenvalues = torch.cat([torch.tensor([7.5, 7.0, 3.0]), torch.linspace(-2.0, 2.0, 37)])
    hessian = q @ torch.diag(eigenvalues) @ q.T
    x = nn.Parameter(torch.randn(40))
    eig = top_eigenvalue(lambda: 0.5 * x @ hessian @ x, [x], max_iters=40, tol=1e-3)
    assert eig.value == pytest.approx(7.5, rel=1e-3) and eig.residual <= 1e-3 and eig.iters < 40
    capped = top_eigenvalue(lambda: 0.5 * x @ hessian @ x, [x], max_iters=3, tol=1e-6)
    assert capped.iters == 3 and capped.residual > 1e-6 and capped.value <= 7.5 + 1e-9


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_vmapped_teachers_predict_what_the_loop_does(space):
    torch.manual_seed(0)
    net = get_space(space).supernet(4, 10, 5 if space == "nb201" else 3, 1)
    loop, batched = TeacherRing(3, 1, voting="soft"), TeacherRing(3, 1, voting="soft", vmap=True)
    for step in range(1, 5):  # the fourth snapshot reuses the oldest teacher's memory
        with torch.no_grad():
            net.alphas()[0].add_(0.1 * torch.randn_like(net.alphas()[0]))
        loop.add(net, step)
        batched.add(net, step)
    x = torch.randn(16, 1, 8, 8)
    a, b = loop.predict(x, 2.0), batched.predict(x, 2.0)
    torch.testing.assert_close(b.voted, a.voted, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.newest, a.newest, rtol=1e-4, atol=1e-5)
