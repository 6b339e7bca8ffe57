"""Sharpness: the top eigenvalue of the Hessian of the validation loss w.r.t. alpha.

RobustDARTS (Zela et al., ICLR 2020) tracks this eigenvalue. It is found by Lanczos iteration
on Hessian-vector products (double backprop through one loss graph), with full
reorthogonalisation, until the Ritz residual ``|beta_k * s_k|`` (for a symmetric matrix, a bound
on the distance from the Ritz value to an eigenvalue) falls below ``tol`` times the eigenvalue,
or after ``max_iters`` products. Lanczos reaches the extreme eigenvalues in far fewer products
than power iteration, whose error shrinks only as the ratio of the top two eigenvalues. Under data
parallelism each worker's product is averaged, so every worker runs the same iteration.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch

from sddarts.trainables.sd_darts.distributed import all_reduce_mean


class Eigen(NamedTuple):
    """A converged (or capped) estimate: the eigenvalue, its relative Ritz residual, the products used."""

    value: float
    residual: float
    iters: int


def top_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor], max_iters: int = 30,
                   tol: float = 0.01, seed: int = 0) -> Eigen:
    """The largest eigenvalue of d^2 loss / d params^2 by Lanczos (see the module docstring)."""
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    dim = sum(p.numel() for p in params)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        parts = list(v.split([p.numel() for p in params]))
        out = torch.autograd.grad(grads, params, grad_outputs=[x.view_as(p).to(p) for x, p in zip(parts, params)],
                                  retain_graph=True)
        out = [o.detach().to(torch.float64) for o in out]
        all_reduce_mean(out)
        return torch.cat([o.reshape(-1) for o in out]).cpu()

    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, generator=gen, dtype=torch.float64)
    basis = [q / q.norm()]
    diag: list[float] = []
    off: list[float] = []
    best = Eigen(float("nan"), float("inf"), 0)
    for k in range(min(max_iters, dim)):
        w = hvp(basis[-1])
        diag.append(float(w @ basis[-1]))
        Q = torch.stack(basis)
        for _ in range(2):  # full reorthogonalisation, twice for stability
            w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        theta, vecs = np.linalg.eigh(np.diag(diag) + np.diag(off, 1) + np.diag(off, -1))
        value = float(theta[-1])
        residual = abs(beta * vecs[-1, -1]) / max(abs(value), 1e-12)
        best = Eigen(value, residual, k + 1)
        if residual <= tol or beta < 1e-10:
            break
        off.append(beta)
        basis.append(w / beta)
    return best
