"""The alpha step of DARTS' bilevel optimisation, first or second order (Liu et al., 2019).

Gradients are taken only with respect to alpha (``torch.autograd.grad``), so the alpha step
never computes weight gradients it would throw away, and then averaged across workers. The
second-order step's virtual step and finite-difference Hessian-vector product run as ``_foreach``
operations with the scalars kept on the device: the step never waits for the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from sddarts.trainables.sd_darts.distributed import all_reduce_mean

if TYPE_CHECKING:
    from sddarts.trainables.sd_darts.search_step import LossTerms

LossFn = Callable[..., "LossTerms"]  # SearchState.loss: (model, x, y, teacher, op_weights=None, fp32=False)


def first_order_grads(net: nn.Module, loss_fn: LossFn, x_val, y_val, t_val) -> tuple[list[torch.Tensor], LossTerms]:
    """d L_val(w, alpha) / d alpha at the current w, and the terms of L_val."""
    terms = loss_fn(net, x_val, y_val, t_val)
    return list(torch.autograd.grad(terms.loss, net.arch_parameters())), terms


def second_order_grads(net: nn.Module, shadow: nn.Module, loss_fn: LossFn, batch_train, batch_val,
                       eta: float, w_opt: torch.optim.Optimizer) -> tuple[list[torch.Tensor], LossTerms]:
    """DARTS' unrolled gradient: d L_val(w', alpha)/d alpha with w' = w - eta * grad L_train,
    minus eta times the finite-difference Hessian-vector product; and the terms of L_val(w')."""
    x_t, y_t, t_t = batch_train
    x_v, y_v, t_v = batch_val
    weights = list(net.w_parameters())
    group = w_opt.param_groups[0]
    grads = list(torch.autograd.grad(loss_fn(net, x_t, y_t, t_t).loss, weights))
    all_reduce_mean(grads)  # the virtual step uses the averaged gradient, as the real w step does
    with torch.no_grad():  # the virtual step w' = w - eta * (g + wd * w + momentum * buf) into the shadow
        step = torch._foreach_add(grads, weights, alpha=group["weight_decay"])
        bufs = [w_opt.state.get(w, {}).get("momentum_buffer") for w in weights]
        for s, b in zip(step, bufs):
            if b is not None:
                s.add_(b, alpha=group["momentum"])
        torch._foreach_copy_(list(shadow.w_parameters()), torch._foreach_add(weights, step, alpha=-eta))
        torch._foreach_copy_(shadow.arch_parameters(), net.arch_parameters())
        torch._foreach_copy_(list(shadow.buffers()), list(net.buffers()))
    shadow_alphas, shadow_weights = shadow.arch_parameters(), list(shadow.w_parameters())
    terms = loss_fn(shadow, x_v, y_v, t_v)
    out = torch.autograd.grad(terms.loss, shadow_alphas + shadow_weights)
    d_alpha, d_w = out[: len(shadow_alphas)], list(out[len(shadow_alphas):])
    all_reduce_mean(d_w)  # one Hessian-vector direction on every worker
    hessian = _hessian_vector(net, loss_fn, x_t, y_t, t_t, d_w)
    return torch._foreach_add(list(d_alpha), hessian, alpha=-eta), terms


def _hessian_vector(net: nn.Module, loss_fn: LossFn, x, y, t, vector) -> list[torch.Tensor]:
    """(d/d alpha)(d/dw) L_train(w, alpha) . vector, by central differences with r = 0.01/|v|."""
    weights = list(net.w_parameters())
    saved = [w.detach().clone() for w in weights]
    r = 0.01 / torch.linalg.vector_norm(torch.stack(torch._foreach_norm(vector)))  # a device scalar
    scaled = torch._foreach_mul(vector, r)
    with torch.no_grad():
        torch._foreach_add_(weights, scaled)
    g_plus = torch.autograd.grad(loss_fn(net, x, y, t, fp32=True).loss, net.arch_parameters())  # a difference quotient: fp32
    with torch.no_grad():
        torch._foreach_sub_(weights, scaled, alpha=2)
    g_minus = torch.autograd.grad(loss_fn(net, x, y, t, fp32=True).loss, net.arch_parameters())
    with torch.no_grad():  # restore w exactly (add/sub/add is not an exact inverse in floating point)
        torch._foreach_copy_(weights, saved)
    return torch._foreach_div(torch._foreach_sub(list(g_plus), list(g_minus)), 2 * r)


def arch_step(net: nn.Module, a_opt: torch.optim.Optimizer, grads: list[torch.Tensor]) -> None:
    """Averages the alpha gradients across workers and takes one Adam step on alpha."""
    all_reduce_mean(grads)
    for a, g in zip(net.arch_parameters(), grads):
        a.grad = g
    a_opt.step()
    a_opt.zero_grad(set_to_none=True)
