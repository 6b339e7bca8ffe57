"""One SD-DARTS search step (an alpha step, then a w step), the objective both minimise, and the
state they work on.

Shared by the search loop and ``benchmarks/search_step.py``, so the benchmark times exactly the
code a search runs. The field's fixes enter where their official code puts them: beta-DARTS'
regulariser on the alpha step, SDARTS' perturbation on the w step's op weights, DARTS-' skip
coefficient and PC-DARTS' partial channels inside the supernet (``fix_schedules`` sets the
per-epoch coefficients).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sddarts.trainables.sd_darts.architect import arch_step, first_order_grads, second_order_grads
from sddarts.trainables.sd_darts.beta_decay import add_beta_grads
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.sd_darts.distill import TeacherOutput, TeacherRing, agreement, distill_loss, sd_loss
from sddarts.trainables.sd_darts.distributed import sync_buffers
from sddarts.trainables.sd_darts.perturb import adversarial_probs, random_probs
from sddarts.trainables.sd_darts.precision import autocast
from sddarts.trainables.sd_darts.step_stats import StepStats

Batch = tuple[torch.Tensor, torch.Tensor]


def search_step(state: SearchState, batch_w: Batch, batch_a: Batch, stats: StepStats) -> None:
    """One bilevel step: alpha on ``batch_a`` (first or second order), then w on ``batch_w``. Its
    figures are added to ``stats`` on the device: ``ce``, ``loss``, ``correct`` and ``n`` of the w step;
    ``sd_loss``/``agreement`` (w step) and ``sd_loss_arch``/``agreement_arch`` (alpha step) where
    the SD term applies, weighted by their ``sd_n``/``sd_n_arch`` samples; ``snapshot_kl`` (the
    newest teacher against the student at its first use) and ``snapshots``."""
    cfg, net = state.cfg, state.net
    (x_w, y_w), (x_a, y_a) = batch_w, batch_a
    t_w, t_a = state.teacher_probs(x_w, x_a)
    if cfg.order == 1:
        grads, arch_terms = first_order_grads(net, state.loss, x_a, y_a, t_a)
    else:
        eta = state.scheduler.get_last_lr()[0]
        grads, arch_terms = second_order_grads(net, state.shadow, state.loss, (x_w, y_w, t_w), (x_a, y_a, t_a), eta,
                                               state.w_opt)
    if state.beta_weight:
        stats.add(beta_loss=add_beta_grads(grads, net.alphas(), state.beta_weight), beta_n=1)
    arch_step(net, state.a_opt, grads)
    record_sd(stats, state.ring, arch_terms, t_a, "_arch", cfg.temperature)

    terms = state.loss(state.model, x_w, y_w, t_w, state.w_step_weights(x_w, y_w))
    state.w_opt.zero_grad(set_to_none=True)
    terms.loss.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_(list(net.w_parameters()), cfg.grad_clip)
    state.w_opt.step()
    state.step += 1
    stats.add_batch(terms.loss, terms.logits, y_w, ce=terms.ce)
    record_sd(stats, state.ring, terms, t_w, "", cfg.temperature)
    if state.ring.due(state.step):
        sync_buffers(net)  # every worker snapshots the same teacher
        state.ring.add(net, state.step)


def record_sd(stats: StepStats, ring: TeacherRing, terms: LossTerms, teacher: TeacherOutput | None, suffix: str,
              temperature: float) -> None:
    """The SD term and the student-teacher agreement of one update; at a snapshot's first use,
    ``T^2 KL`` between the newest teacher and the student (0 for an unchanged student)."""
    if teacher is None:
        return
    n = len(terms.logits)
    logits = terms.logits.detach()
    stats.add(**{f"sd_loss{suffix}": terms.sd * n, f"agreement{suffix}": agreement(logits, teacher.voted) * n,
                 f"sd_n{suffix}": n})
    if ring.first_use():
        stats.add(snapshot_kl=sd_loss(logits, teacher.newest, temperature), snapshots=1)


class LossTerms(NamedTuple):
    """A loss and its parts: the objective, the logits, the cross-entropy, the SD term (or None)."""

    loss: torch.Tensor
    logits: torch.Tensor
    ce: torch.Tensor
    sd: torch.Tensor | None


def sd_objective(logits: torch.Tensor, y: torch.Tensor, teachers: TeacherOutput | None, cfg: SearchConfig) -> LossTerms:
    """SD-DARTS' objective: ``CE(student, y) + sd_weight * SD(student, vote(teachers))``, where
    ``teachers.voted`` is the vote of the last ``vote_count`` snapshots (``TeacherRing.predict``) and
    SD the distillation term of ``voting`` at ``temperature`` (``distill_loss``). Plain CE while
    the ring is empty or the SD term does not apply to this update."""
    ce = F.cross_entropy(logits, y)
    if teachers is None:
        return LossTerms(ce, logits, ce, None)
    sd = distill_loss(logits, teachers.voted, cfg.temperature, cfg.voting)
    return LossTerms(ce + cfg.sd_weight * sd, logits, ce, sd)


@dataclass
class SearchState:
    """Everything a search step reads and updates, and what a checkpoint saves of it."""

    cfg: SearchConfig
    net: nn.Module  # the bare supernet of any space (alpha steps, teachers, checkpoints)
    model: nn.Module  # ``net``, wrapped in DDP when there are several workers (w steps)
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ring: TeacherRing
    shadow: nn.Module | None = None  # second order: the virtually stepped copy
    step: int = 0
    history: list = field(default_factory=list)  # numeric metrics per epoch
    alpha_history: list = field(default_factory=list)  # softmax(alpha) per cell, per epoch
    genotypes: dict = field(default_factory=dict)  # epoch -> genotype JSON (DARTS-ES returns an earlier one)
    beta_weight: float = 0.0  # beta-DARTS' lambda this epoch (``fix_schedules``)
    perturb_epsilon: float = 0.0  # SDARTS' eps this epoch

    @classmethod
    def create(cls, cfg: SearchConfig, net: nn.Module, model: nn.Module | None = None) -> "SearchState":
        w_opt = torch.optim.SGD(net.w_parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=cfg.epochs, eta_min=cfg.lr_min)
        ring = TeacherRing(cfg.vote_count if cfg.distills else 0, cfg.teacher_interval, cfg.voting, cfg.teacher_bn,
                           cfg.teacher_vmap)
        shadow = copy.deepcopy(net) if cfg.order == 2 else None
        return cls(cfg, net, model if model is not None else net, w_opt, a_opt, scheduler, ring, shadow)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, teacher: TeacherOutput | None,
             op_weights: tuple[torch.Tensor, ...] | None = None, fp32: bool = False) -> LossTerms:
        """``sd_objective`` of ``model``'s forward on ``x`` (under the config's autocast unless
        ``fp32``; the loss itself in fp32)."""
        with autocast(self.cfg, x.device, enabled=not fp32):
            logits = model(x, op_weights).float()
        return sd_objective(logits, y, teacher, self.cfg)

    def w_step_weights(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The op weights of the w step, detached: softmax(alpha), perturbed by SDARTS where
        ``perturb`` is on (the adversary attacks this batch with BatchNorm in eval mode)."""
        net = self.net
        with torch.no_grad():
            probs = tuple(p.detach() for p in net.mix_probs())
        if self.cfg.perturb == "random":
            probs = random_probs(probs, self.perturb_epsilon)
        elif self.cfg.perturb == "adversarial":
            def loss_at(p):
                with autocast(self.cfg, x.device):
                    return F.cross_entropy(net(x, net.op_weights(p)).float(), y)

            net.eval()
            try:
                probs = adversarial_probs(loss_at, probs, self.perturb_epsilon)
            finally:
                net.train()
        with torch.no_grad():
            return tuple(w.detach() for w in net.op_weights(probs))

    def teacher_probs(self, x_w: torch.Tensor, x_a: torch.Tensor) -> tuple[TeacherOutput | None, TeacherOutput | None]:
        """The teachers' predictions for the w-batch and the alpha-batch, each batch in its own
        forward (a teacher sees BatchNorm as the student does) and only where distillation applies
        to that update (``distill_on``)."""
        if not len(self.ring):
            return None, None
        on, T = self.cfg.distill_on, self.cfg.temperature
        with autocast(self.cfg, x_w.device):
            return (self.ring.predict(x_w, T) if on in ("both", "weights") else None,
                    self.ring.predict(x_a, T) if on in ("both", "arch") else None)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "scheduler": self.scheduler.state_dict(),
                "ring": self.ring.state_dict(), "history": self.history, "alpha_history": self.alpha_history,
                "genotypes": self.genotypes}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.net.load_state_dict(saved["net"])
        self.w_opt.load_state_dict(saved["w_opt"])
        self.a_opt.load_state_dict(saved["a_opt"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.ring.load_state_dict(saved["ring"], self.net)
        self.step = saved["step"]
        self.history[:] = saved["history"]
        self.alpha_history[:] = [tuple(np.asarray(a) for a in epoch) for epoch in saved["alpha_history"]]
        self.genotypes.update(saved.get("genotypes", {}))
