"""beta-DARTS' beta-decay regularisation (Ye et al., "beta-DARTS: Beta-Decay Regularization for
Differentiable Architecture Search", CVPR 2022).

On the alpha step only, the loss gains ``lambda(ep) * L_beta`` with::

    L_beta(alpha) = mean over edges e of logsumexp_o(alpha_{e,o})        (on raw alpha, `none` included)
    dL_beta / d alpha_{e,o} = softmax(alpha_e)_o / E
    lambda(ep) = beta_decay * ep / beta_decay_epochs                   (official: 50 * ep / 100)

Every alpha is pulled down in proportion to its own activated weight, which keeps them small and
the softmax from saturating. The mean runs over all edges of all cell types together (the public
DARTS-space ports' choice; the official code has one NAS-Bench-201 cell). PC-DARTS' edge weights
are left out, as the paper defines the term on alpha alone.
"""

from __future__ import annotations

from typing import Sequence

import torch


def beta_weight(beta_decay: float, epoch: int, reference_epochs: int) -> float:
    """lambda at the start of 0-based ``epoch``: ``beta_decay * epoch / reference_epochs``."""
    return beta_decay * epoch / reference_epochs


def beta_loss(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean over every edge (all cell types) of logsumexp over its ops, on raw alpha."""
    return torch.cat([torch.logsumexp(a.float(), dim=-1) for a in alphas]).mean()


def add_beta_grads(grads: list[torch.Tensor], alphas: Sequence[torch.Tensor], weight: float) -> torch.Tensor:
    """Adds ``weight * dL_beta/d alpha`` to the first ``len(alphas)`` gradients in place; returns
    L_beta (detached), which the search logs apart from the cross-entropy."""
    value = beta_loss(alphas)
    extra = torch.autograd.grad(weight * value, list(alphas))
    for i, g in enumerate(extra):
        grads[i] = grads[i] + g
    return value.detach()
