"""The alpha step of DARTS' bilevel optimisation, first or second order (Liu et al., 2019).

Gradients are taken only with respect to alpha (``torch.autograd.grad``), so the alpha step
never computes weight gradients it would throw away, and then averaged across workers.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from sddarts.trainables.distributed import all_reduce_mean

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def first_order_grads(net: nn.Module, loss_fn: LossFn, x_val, y_val, t_val) -> list[torch.Tensor]:
    """d L_val(w, alpha) / d alpha at the current w."""
    return list(torch.autograd.grad(loss_fn(net, x_val, y_val, t_val), net.alphas()))


def second_order_grads(net: nn.Module, shadow: nn.Module, loss_fn: LossFn, batch_train, batch_val,
                       eta: float, w_opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    """DARTS' unrolled gradient: d L_val(w', alpha)/d alpha with w' = w - eta * grad L_train,
    minus eta times the finite-difference Hessian-vector product."""
    x_t, y_t, t_t = batch_train
    x_v, y_v, t_v = batch_val
    weights = list(net.w_parameters())
    group = w_opt.param_groups[0]
    momentum, wd = group["momentum"], group["weight_decay"]
    grads = list(torch.autograd.grad(loss_fn(net, x_t, y_t, t_t), weights))
    all_reduce_mean(grads)  # the virtual step uses the averaged gradient, as the real w step does
    with torch.no_grad():  # the virtual step w' into the shadow network
        for w, g, s in zip(weights, grads, shadow.w_parameters()):
            buf = w_opt.state.get(w, {}).get("momentum_buffer")
            step = g + wd * w + (momentum * buf if buf is not None else 0.0)
            s.copy_(w - eta * step)
        for a, s in zip(net.alphas(), shadow.alphas()):
            s.copy_(a)
        for b, s in zip(net.buffers(), shadow.buffers()):
            s.copy_(b)
    shadow_alphas, shadow_weights = shadow.alphas(), list(shadow.w_parameters())
    out = torch.autograd.grad(loss_fn(shadow, x_v, y_v, t_v), shadow_alphas + shadow_weights)
    d_alpha, d_w = out[: len(shadow_alphas)], list(out[len(shadow_alphas):])
    all_reduce_mean(d_w)  # one Hessian-vector direction on every worker
    hessian = _hessian_vector(net, loss_fn, x_t, y_t, t_t, d_w)
    return [da - eta * h for da, h in zip(d_alpha, hessian)]


def _hessian_vector(net: nn.Module, loss_fn: LossFn, x, y, t, vector) -> list[torch.Tensor]:
    """(d/d alpha)(d/dw) L_train(w, alpha) . vector, by central differences with r = 0.01/|v|."""
    weights = list(net.w_parameters())
    saved = [w.detach().clone() for w in weights]
    r = 0.01 / torch.cat([v.reshape(-1) for v in vector]).norm()
    with torch.no_grad():
        for w, v in zip(weights, vector):
            w.add_(v, alpha=float(r))
    g_plus = torch.autograd.grad(loss_fn(net, x, y, t), net.alphas())
    with torch.no_grad():
        for w, v in zip(weights, vector):
            w.sub_(v, alpha=2 * float(r))
    g_minus = torch.autograd.grad(loss_fn(net, x, y, t), net.alphas())
    with torch.no_grad():  # restore w exactly (add/sub/add is not an exact inverse in floating point)
        for w, orig in zip(weights, saved):
            w.copy_(orig)
    return [(gp - gm) / (2 * r) for gp, gm in zip(g_plus, g_minus)]


def arch_step(net: nn.Module, a_opt: torch.optim.Optimizer, grads: list[torch.Tensor]) -> None:
    """Averages the alpha gradients across workers and takes one Adam step on alpha."""
    all_reduce_mean(grads)
    for a, g in zip(net.alphas(), grads):
        a.grad = g
    a_opt.step()
    a_opt.zero_grad(set_to_none=True)
