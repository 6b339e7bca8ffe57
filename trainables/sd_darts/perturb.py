"""SDARTS' perturbation of the architecture on the w step (Chen & Hsieh, "Stabilizing
Differentiable Architecture Search via Perturbation-based Regularization", ICML 2020).

The w step trains against perturbed *activated* weights ``A = softmax(alpha)`` (per edge)::

    min_w  E_delta L_train(w, clip(A + delta))       SDARTS-RS:  delta ~ U[-eps, eps]
    min_w  max_{|delta|_inf <= eps} L_train(w, clip(A + delta))   SDARTS-ADV: 7-step L-inf PGD
    eps(ep) = 0.03 + (eps_max - 0.03) * ep / EP

``clip`` clamps each edge's row to [0, 1], puts 1 on the row's former argmax if nothing is left,
and divides by the row's sum (SmoothDARTS' ``model.clip``). The attack maximises the cross-entropy
of the w-step batch with BatchNorm in eval mode, starts from a random point, steps ``2 eps / 7``
along the gradient's sign, projects into the eps-box around ``A`` after each step, and returns the
clean ``A`` if the attack ended below the clean loss. Alpha itself, its gradient and its Adam state
are never touched: the perturbed weights are a detached copy, and the genotype comes from clean alpha.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Probs = tuple[torch.Tensor, ...]


def perturb_epsilon(epsilon_max: float, epoch: int, epochs: int) -> float:
    """eps at the start of 0-based ``epoch``: linear from 0.03 (or ``epsilon_max`` if smaller) to ``epsilon_max``."""
    start = min(0.03, epsilon_max)
    return start + (epsilon_max - start) * epoch / epochs


def clip_rows(a: torch.Tensor) -> torch.Tensor:
    """SmoothDARTS' ``clip``: each row clamped to [0, 1] and renormalised to sum 1 (an all-zero
    row becomes one-hot on its argmax before clamping)."""
    top = torch.nn.functional.one_hot(a.argmax(-1), a.shape[-1]).to(a.dtype)
    clamped = a.clamp(0, 1)
    empty = clamped.sum(-1, keepdim=True) == 0
    clamped = torch.where(empty, top, clamped)
    return clamped / clamped.sum(-1, keepdim=True)


def random_probs(probs: Sequence[torch.Tensor], epsilon: float) -> Probs:
    """SDARTS-RS: ``clip(A + U[-eps, eps])``, drawn fresh for every call."""
    with torch.no_grad():
        return tuple(clip_rows(p + torch.empty_like(p).uniform_(-epsilon, epsilon)) for p in probs)


def adversarial_probs(loss_at: Callable[[Probs], torch.Tensor], probs: Sequence[torch.Tensor], epsilon: float,
                      steps: int = 7) -> Probs:
    """SDARTS-ADV: L-inf PGD on ``loss_at`` (the w-step batch's cross-entropy at given op weights,
    run by the caller in eval mode) from a random start, ``steps`` signed steps of ``2 eps / steps``."""
    clean = tuple(p.detach() for p in probs)
    with torch.no_grad():
        before = loss_at(clean)
    adv = random_probs(clean, epsilon)
    for _ in range(steps):
        adv = tuple(a.detach().requires_grad_(True) for a in adv)
        grads = torch.autograd.grad(loss_at(adv), adv)  # only these: no w gradient is left behind
        with torch.no_grad():
            adv = tuple(clip_rows(c + (a + 2 * epsilon / steps * g.sign() - c).clamp(-epsilon, epsilon))
                        for c, a, g in zip(clean, adv, grads))
    with torch.no_grad():
        after = loss_at(adv)
    return clean if bool(after < before) else tuple(a.detach() for a in adv)
