"""Self-distillation with voting teachers (SD-DARTS, Zhu et al., 2023).

Every ``teacher_interval`` optimisation steps a snapshot of the supernet (w and alpha) enters a
ring that keeps the last ``vote_count`` snapshots. The teachers' softened probabilities are
combined by voting, and ``sd_weight * T^2 * KL(p_teacher || p_student)`` joins the loss.
"""

from __future__ import annotations

import copy
from collections import deque

import torch
import torch.nn.functional as F
from torch import nn


def soft_vote(probs: torch.Tensor) -> torch.Tensor:
    """Soft voting: the mean of the teachers' probabilities. ``probs``: (K, N, classes)."""
    return probs.mean(dim=0)


def hard_vote(probs: torch.Tensor) -> torch.Tensor:
    """Hard voting: one-hot of the majority of the teachers' argmax; ties go to the class with
    the highest mean probability. ``probs``: (K, N, classes)."""
    num_classes = probs.shape[-1]
    votes = F.one_hot(probs.argmax(dim=-1), num_classes).sum(dim=0).float()  # (N, classes)
    mean = probs.mean(dim=0)
    top = votes == votes.max(dim=-1, keepdim=True).values
    winner = torch.where(top, mean, torch.full_like(mean, -1.0)).argmax(dim=-1)
    return F.one_hot(winner, num_classes).to(probs.dtype)


VOTERS = {"soft": soft_vote, "hard": hard_vote}


def sd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(p_teacher || p_student)``, batch mean, with the student softened at ``T``.

    ``teacher_probs`` are already softened (and voted). Zero-probability teacher classes add
    nothing, so hard-voting one-hots are fine.
    """
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * temperature**2


def agreement(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Share of samples where the student's top class equals the voted teacher's."""
    return (student_logits.argmax(dim=-1) == teacher_probs.argmax(dim=-1)).float().mean()


class TeacherRing:
    """The last ``vote_count`` snapshots of the supernet, taken every ``teacher_interval`` steps.

    Teachers are inference-mode snapshots: eval-mode BatchNorm with the running statistics the
    supernet had at snapshot time, no autograd. They never change BatchNorm statistics, each
    costs one inference forward, and since a teacher's output for a sample does not depend on
    the rest of the batch, the w- and alpha-batches share one forward.
    """

    def __init__(self, vote_count: int, teacher_interval: int, voting: str = "soft"):
        if voting not in VOTERS:
            raise ValueError(f"voting must be one of {', '.join(VOTERS)} (got {voting!r})")
        self.vote_count, self.teacher_interval, self.voting = vote_count, teacher_interval, voting
        self.teachers: deque[nn.Module] = deque(maxlen=max(vote_count, 1))
        self.snapshot_steps: deque[int] = deque(maxlen=max(vote_count, 1))

    def __len__(self) -> int:
        return len(self.teachers) if self.vote_count > 0 else 0

    def due(self, step: int) -> bool:
        """Whether a snapshot is due after optimisation step ``step`` (1-based)."""
        return self.vote_count > 0 and step % self.teacher_interval == 0

    def maybe_snapshot(self, step: int, model: nn.Module) -> bool:
        """After optimisation step ``step``: snapshot ``model`` if the interval is due."""
        if not self.due(step):
            return False
        self.add(model, step)
        return True

    def add(self, model: nn.Module, step: int) -> None:
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.grad = None
        teacher.requires_grad_(False)
        self.teachers.append(teacher)
        self.snapshot_steps.append(step)

    def predict(self, x: torch.Tensor, temperature: float) -> torch.Tensor | None:
        """The voted, softened teacher probabilities for ``x``, or None while the ring is empty."""
        if not len(self):
            return None
        return self._vote(x, temperature).clone()  # out of inference mode: usable in the loss

    @torch.inference_mode()
    def _vote(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        probs = torch.stack([F.softmax(t(x) / temperature, dim=-1) for t in self.teachers])
        return VOTERS[self.voting](probs)

    def state_dict(self) -> dict:
        return {"steps": list(self.snapshot_steps), "teachers": [t.state_dict() for t in self.teachers]}

    def load_state_dict(self, state: dict, template: nn.Module) -> None:
        """Rebuilds the ring from ``state``, using ``template`` for the module structure."""
        self.teachers.clear()
        self.snapshot_steps.clear()
        for step, weights in zip(state["steps"], state["teachers"]):
            self.add(template, step)
            self.teachers[-1].load_state_dict(weights)
