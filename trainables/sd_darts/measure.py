"""Held-out measurements of a supernet: accuracy of the supernet and of its genotype, alpha's
entropy, and sharpness. BatchNorm uses batch statistics and leaves the running ones untouched."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from sddarts.search_spaces.operations import PARAM_FREE
from sddarts.search_spaces.supernet import Supernet
from sddarts.trainables.sd_darts.distributed import all_reduce_mean
from sddarts.trainables.sd_darts.sharpness import Eigen, top_eigenvalue


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Batch statistics without touching the running ones: BN in train mode with momentum 0."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum) for m in bns]
    for m in bns:
        m.train()
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (training, momentum) in zip(bns, saved):
            m.train(training)
            m.momentum = momentum


@torch.no_grad()
def loss_and_accuracy(forward: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
                      device: torch.device) -> tuple[float, float]:
    """(mean cross-entropy, accuracy %) of ``forward``'s logits over ``loader``, summed over all
    workers' shards."""
    totals = torch.zeros(3, device=device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = forward(x)
        totals += torch.stack([F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum(),
                               torch.tensor(len(y), device=device)])
    all_reduce_mean([totals])
    return float(totals[0] / totals[2]), float(100 * totals[1] / totals[2])


def supernet_accuracy(net: Supernet, loader: DataLoader, device: torch.device,
                      op_weights: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[float, float]:
    """(loss, accuracy %) of the supernet, or of the op weights it is given (a genotype's one-hot)."""
    with frozen_bn_stats(net):
        return loss_and_accuracy(lambda x: net(x, op_weights), loader, device)


def alpha_entropy(net: Supernet) -> float:
    """Mean entropy (nats) of softmax(alpha) over all edges of both cells."""
    with torch.no_grad():
        p = torch.cat(list(net.mix_probs()))
        return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


def collapse_stats(genotype, op_weights: Sequence[torch.Tensor]) -> dict[str, float]:
    """How collapsed a search is: the share of parameter-free ops (skip, pooling, none, noise)
    and the number of skip connections in the derived normal cell (nb201: its only cell), and the
    mean over that cell's edges of the largest softmax(alpha) weight (1/ops: undecided, 1: one op)."""
    ops = genotype.ops_of(genotype.cells[0])
    with torch.no_grad():
        top = op_weights[0].max(dim=-1).values
    return {"param_free_share": sum(op in PARAM_FREE for op in ops) / len(ops),
            "skip_count": float(sum(op == "skip_connect" for op in ops)),
            "alpha_max_mean": float(top.mean())}


def alpha_sharpness(net: Supernet, loader: DataLoader, device: torch.device, batches: int, max_iters: int,
                    tol: float, seed: int) -> Eigen:
    """Top Hessian eigenvalue of the held-out loss w.r.t. alpha on the first ``batches`` batches."""
    data = [b for _, b in zip(range(batches), loader)]
    if not data:
        raise ValueError("sharpness needs at least one held-out batch on every worker; lower --batch-size")

    def loss() -> torch.Tensor:
        return sum(F.cross_entropy(net(x.to(device)), y.to(device)) for x, y in data) / len(data)

    with frozen_bn_stats(net):
        return top_eigenvalue(loss, net.alphas(), max_iters, tol, seed=seed)
