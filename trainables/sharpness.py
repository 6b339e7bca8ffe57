"""Sharpness: the dominant eigenvalue of the Hessian of the validation loss w.r.t. alpha.

Power iteration on Hessian-vector products (double backprop), as in RobustDARTS
(Zela et al., ICLR 2020). Under data parallelism each worker's product is averaged.
"""

from __future__ import annotations

from typing import Callable

import torch

from sddarts.trainables.distributed import all_reduce_mean


def dominant_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor],
                        iters: int = 10, seed: int = 0) -> float:
    """The eigenvalue of largest magnitude of d^2 loss / d params^2, by ``iters`` power iterations.

    The loss graph is built once and reused for every Hessian-vector product.
    """
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(p) for p in params]
    eig = 0.0
    for i in range(iters):
        norm = torch.sqrt(sum((x * x).sum() for x in v))
        v = [x / norm for x in v]
        hv = list(torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=i < iters - 1))
        all_reduce_mean(hv)
        eig = float(sum((a * b).sum() for a, b in zip(v, hv)))
        v = [h.detach() for h in hv]
    return eig
