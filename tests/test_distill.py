"""The self-distillation maths: KL at temperature T, soft and hard voting, the teacher ring."""

import math

import pytest
import torch
from torch import nn

from sddarts.trainables.distill import TeacherRing, agreement, hard_vote, sd_loss, soft_vote
from sddarts.trainables.sharpness import dominant_eigenvalue


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


def test_ring_snapshots_every_interval_and_evicts_the_oldest():
    model = _Scale()
    ring = TeacherRing(vote_count=2, teacher_interval=3)
    taken = []
    for step in range(1, 10):
        with torch.no_grad():
            model.w.fill_(float(step))
        if ring.maybe_snapshot(step, model):
            taken.append(step)
    assert taken == [3, 6, 9]
    assert list(ring.snapshot_steps) == [6, 9] and len(ring) == 2
    assert [float(t.w) for t in ring.teachers] == [6.0, 9.0]
    assert all(not p.requires_grad for t in ring.teachers for p in t.parameters())


def test_teachers_do_not_change_batchnorm_statistics():
    model = _Scale()
    ring = TeacherRing(vote_count=1, teacher_interval=1)
    ring.maybe_snapshot(1, model)
    before = ring.teachers[0].bn.running_mean.clone()
    probs = ring.predict(torch.randn(8, 2) + 5.0, temperature=1.0)
    assert probs.shape == (8, 2)
    torch.testing.assert_close(ring.teachers[0].bn.running_mean, before)
    torch.testing.assert_close(model.bn.running_mean, before)


def test_a_teachers_output_for_a_sample_does_not_depend_on_its_batch():
    model = _Scale()
    model.train()(torch.randn(16, 2) * 3 + 1)  # some running statistics
    ring = TeacherRing(vote_count=1, teacher_interval=1)
    ring.maybe_snapshot(1, model)
    a, b = torch.randn(4, 2), torch.randn(5, 2)
    both = ring.predict(torch.cat([a, b]), 2.0)
    torch.testing.assert_close(both[:4], ring.predict(a, 2.0))
    torch.testing.assert_close(both[4:], ring.predict(b, 2.0))


def test_vote_count_zero_is_plain_darts():
    ring = TeacherRing(vote_count=0, teacher_interval=1)
    assert not ring.maybe_snapshot(1, _Scale())
    assert len(ring) == 0 and ring.predict(torch.randn(2, 2), 1.0) is None


def test_ring_state_round_trip():
    model = _Scale()
    ring = TeacherRing(vote_count=2, teacher_interval=1)
    for step in (1, 2):
        with torch.no_grad():
            model.w.fill_(float(step * 10))
        ring.maybe_snapshot(step, model)
    restored = TeacherRing(vote_count=2, teacher_interval=1)
    restored.load_state_dict(ring.state_dict(), _Scale())
    assert list(restored.snapshot_steps) == [1, 2]
    assert [float(t.w) for t in restored.teachers] == [10.0, 20.0]


def test_power_iteration_recovers_the_top_eigenvalue_of_a_quadratic():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    eigenvalues = torch.tensor([7.5, 3.0, 2.0, 1.0, 0.5, -1.0])
    hessian = q @ torch.diag(eigenvalues) @ q.T
    x = nn.Parameter(torch.randn(6))
    found = dominant_eigenvalue(lambda: 0.5 * x @ hessian @ x, [x], iters=60)
    assert found == pytest.approx(7.5, rel=0.01)
