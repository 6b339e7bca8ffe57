"""Self-distillation with voting teachers (SD-DARTS, Zhu et al., 2023).

Every ``teacher_interval`` optimisation steps a snapshot of the supernet (w and alpha) enters a
ring that keeps the last ``vote_count`` snapshots. The teachers' softened probabilities are
combined by voting and join the loss: ``sd_weight * T^2 * KL(p_teacher || p_student)`` for a soft
vote, ``sd_weight * CE(student, voted class)`` for a hard one.

A teacher sees BatchNorm as the student does (``teacher_bn="batch"``, the default): the statistics
of the batch it is given, its running statistics untouched. A snapshot identical to the student
then gives an SD term of exactly 0, so the term measures how far the student moved since the
snapshot, not the difference between BatchNorm's train and eval modes (``teacher_bn="running"``,
eval-mode teachers, keeps that older behaviour for measuring it).
"""

from __future__ import annotations

import copy
from collections import deque
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

TEACHER_BN = ("batch", "running")


def soft_vote(probs: torch.Tensor) -> torch.Tensor:
    """Soft voting: the mean of the teachers' probabilities. ``probs``: (K, N, classes)."""
    return probs.mean(dim=0)


def hard_vote(probs: torch.Tensor) -> torch.Tensor:
    """Hard voting: one-hot of the majority of the teachers' argmax; ties go to the class with
    the highest mean probability. ``probs``: (K, N, classes)."""
    classes = torch.arange(probs.shape[-1], device=probs.device)  # one-hots by comparison: F.one_hot reads
    votes = (probs.argmax(dim=-1, keepdim=True) == classes).sum(dim=0)  # its input back to check it; (N, classes)
    mean = probs.mean(dim=0)
    top = votes == votes.max(dim=-1, keepdim=True).values
    winner = torch.where(top, mean, torch.full_like(mean, -1.0)).argmax(dim=-1, keepdim=True)
    return (winner == classes).to(probs.dtype)


VOTERS = {"soft": soft_vote, "hard": hard_vote}


def sd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(p_teacher || p_student)``, batch mean, with the student softened at ``T``.

    ``teacher_probs`` are already softened (and voted). The T^2 keeps the gradient's size
    independent of T for soft targets (Hinton et al., 2015)."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * temperature**2


def distill_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float,
                 voting: str) -> torch.Tensor:
    """The SD term of ``voting``. A soft vote: ``sd_loss`` at ``T``. A hard vote is a pseudo-label:
    the cross-entropy of the unsoftened student against the voted class. Its gradient in the
    logits, ``softmax(z) - onehot``, is the size of the cross-entropy's at any T; the KL at T times
    T^2 would instead give ``T * (softmax(z/T) - onehot)``, T times larger, since a one-hot target
    does not shrink with T the way a softened one does."""
    if voting == "hard":
        return F.cross_entropy(student_logits, teacher_probs.argmax(dim=-1))
    return sd_loss(student_logits, teacher_probs, temperature)


def agreement(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Share of samples where the student's top class equals the voted teacher's."""
    return (student_logits.argmax(dim=-1) == teacher_probs.argmax(dim=-1)).float().mean()


class TeacherOutput(NamedTuple):
    """What the ring predicts for one batch: the voted probabilities and the newest teacher's own."""

    voted: torch.Tensor
    newest: torch.Tensor


def _set_teacher_bn(teacher: nn.Module, teacher_bn: str) -> None:
    """``batch``: BatchNorm normalises with the batch's statistics and never updates its running
    ones (train mode without tracking); ``running``: eval mode, the snapshot's running statistics."""
    teacher.train(teacher_bn == "batch")
    for m in teacher.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = teacher_bn == "running"


class TeacherRing:
    """The last ``vote_count`` snapshots of the supernet, taken every ``teacher_interval`` steps.

    Teachers run without autograd and never change BatchNorm statistics. With ``teacher_bn``
    ``batch`` a teacher's output depends on the batch (as the student's does), so each batch gets
    its own forward. Snapshots are copied into the ring's preallocated modules once it is full.
    """

    def __init__(self, vote_count: int, teacher_interval: int, voting: str = "soft", teacher_bn: str = "batch",
                 vmap: bool = False):
        if voting not in VOTERS:
            raise ValueError(f"voting must be one of {', '.join(VOTERS)} (got {voting!r})")
        if teacher_bn not in TEACHER_BN:
            raise ValueError(f"teacher_bn must be one of {', '.join(TEACHER_BN)} (got {teacher_bn!r})")
        self.vote_count, self.teacher_interval = vote_count, teacher_interval
        self.voting, self.teacher_bn = voting, teacher_bn
        self.teachers: deque[nn.Module] = deque(maxlen=max(vote_count, 1))
        self.snapshot_steps: deque[int] = deque(maxlen=max(vote_count, 1))
        self.fresh = False  # a snapshot not yet compared with the student (``first_use``)
        self.vmap = vmap  # all teachers in one forward (torch.func.vmap over their stacked weights)
        self._stacked: tuple | None = None

    def __len__(self) -> int:
        return len(self.teachers) if self.vote_count > 0 else 0

    def due(self, step: int) -> bool:
        """Whether a snapshot is due after optimisation step ``step`` (1-based)."""
        return self.vote_count > 0 and step % self.teacher_interval == 0

    def first_use(self) -> bool:
        """True once after each snapshot, at the first update that uses it (where ``snapshot_kl``
        compares the newest teacher with the student), else False."""
        fresh, self.fresh = self.fresh, False
        return fresh

    def add(self, model: nn.Module, step: int) -> None:
        """Snapshots ``model`` (w, alpha and BatchNorm buffers) as the newest teacher."""
        if len(self.teachers) == self.teachers.maxlen:  # reuse the oldest teacher's memory
            teacher = self.teachers.popleft()
            self.snapshot_steps.popleft()
            with torch.no_grad():
                for mine, theirs in zip(teacher.state_dict().values(), model.state_dict().values()):
                    mine.copy_(theirs)
        else:
            teacher = copy.deepcopy(model)
            for p in teacher.parameters():
                p.grad = None
            teacher.requires_grad_(False)
            _set_teacher_bn(teacher, self.teacher_bn)
        self.teachers.append(teacher)
        self.snapshot_steps.append(step)
        self.fresh = True
        self._stacked = None

    def predict(self, x: torch.Tensor, temperature: float) -> TeacherOutput | None:
        """The voted and the newest teacher's softened probabilities for ``x``, or None while the
        ring is empty."""
        if not len(self):
            return None
        with torch.no_grad():
            logits = self._vmapped(x) if self.vmap and len(self.teachers) > 1 else torch.stack([t(x) for t in self.teachers])
            probs = F.softmax(logits.float() / temperature, dim=-1)
            return TeacherOutput(VOTERS[self.voting](probs), probs[-1])

    def _vmapped(self, x: torch.Tensor) -> torch.Tensor:
        """Every teacher's logits for ``x`` in one vmapped forward: (K, N, classes)."""
        from torch.func import functional_call, stack_module_state

        if self._stacked is None:  # restacked after each snapshot
            params, buffers = stack_module_state(list(self.teachers))
            self._stacked = (params, buffers, copy.deepcopy(self.teachers[0]).to("meta"))
        params, buffers, shell = self._stacked

        def one(p, b, inputs):
            return functional_call(shell, (p, b), (inputs,))

        return torch.vmap(one, in_dims=(0, 0, None), randomness="same")(params, buffers, x)

    def state_dict(self) -> dict:
        return {"steps": list(self.snapshot_steps), "teachers": [t.state_dict() for t in self.teachers],
                "fresh": self.fresh}

    def load_state_dict(self, state: dict, template: nn.Module) -> None:
        """Rebuilds the ring from ``state``, using ``template`` for the module structure."""
        self.teachers.clear()
        self.snapshot_steps.clear()
        for step, weights in zip(state["steps"], state["teachers"]):
            self.add(template, step)
            self.teachers[-1].load_state_dict(weights)
        self.fresh = bool(state.get("fresh", False))
