"""Data-parallel helpers: averaging across Train workers, keeping replicas identical, and
checking that they are. Each is a no-op on one worker."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    """Workers in the process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(tensors: list[torch.Tensor], mean: bool = False) -> None:
    """Sums (``mean``: averages) tensors in place across the data-parallel workers, in one collective."""
    if world_size() == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    if mean:
        flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset: offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    """Averages tensors in place across the data-parallel workers."""
    all_reduce_sum(tensors, mean=True)


def sync_buffers(model: nn.Module) -> None:
    """Averages the floating-point buffers (BatchNorm running statistics) across workers.

    Each worker updates BatchNorm statistics on its own batches, so without this the ranks'
    buffers, and the teachers snapshotted from them, differ."""
    all_reduce_mean([b for b in model.buffers() if b.is_floating_point()])


def replica_drift(model: nn.Module) -> float:
    """Largest difference between any worker's parameters and floating-point buffers and rank
    0's (0.0 when every replica is identical)."""
    if world_size() == 1:
        return 0.0
    tensors = [p.detach() for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    drift = (flat - ref).abs().max()
    dist.all_reduce(drift, op=dist.ReduceOp.MAX)
    return float(drift)


def worker_nodes(node_id: str) -> int:
    """How many distinct nodes the workers run on, given this worker's ``node_id``."""
    if world_size() == 1:
        return 1
    nodes: list = [None] * world_size()
    dist.all_gather_object(nodes, node_id)
    return len(set(nodes))


class WeightsOnly(nn.Module):
    """The part of a supernet that DDP wraps: every child module but its architecture parameters
    (``arch``), with the supernet's own forward. Alpha stays outside DDP, as in pt.darts' controller:
    the alpha step averages its gradients itself (``architect.arch_step``), and the w step passes
    the op weights explicitly, so DDP's reducer sees only w."""

    def __init__(self, net: nn.Module, arch: str = "arch"):
        super().__init__()
        object.__setattr__(self, "net", net)  # a plain attribute: not a submodule, so alpha is not registered
        for name, child in net.named_children():
            if name != arch:
                self.add_module(name, child)

    def forward(self, x: torch.Tensor, op_weights):
        return self.net(x, op_weights)
