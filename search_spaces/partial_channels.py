"""PC-DARTS' partial channel connections and edge normalisation (Xu et al., "PC-DARTS: Partial
Channel Connections for Memory-Efficient Architecture Search", ICLR 2020).

An edge sends only ``1/K`` of its input's channels through the mixed op; the rest bypass it
(max-pooled on stride-2 edges), and a channel shuffle rotates which channels are sampled next::

    y_e = shuffle_K(cat[ sum_o softmax(alpha_e)_o * o(x[:, :C/K]),  x[:, C/K:] ])

Edge normalisation weighs each edge in its node's sum by ``softmax(edge_beta)`` over the node's
incoming edges, so ``s_i = sum_j softmax(edge_beta_i)_j * y_ij``. Since the op weights of an edge
sum to 1, sddarts folds both into the op weights the supernet passes around:
``W_e = softmax(alpha_e) * softmax(edge_beta)_e``; the mixed part is weighted by ``W_e`` and the
bypass by ``W_e.sum()``. PC-DARTS derives its genotype from the same ``W`` (DARTS' rule on it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# incoming edges of each intermediate node, as (first, end) rows of alpha
DARTS_NODE_EDGES = ((0, 2), (2, 5), (5, 9), (9, 14))
NB201_NODE_EDGES = ((0, 1), (1, 3), (3, 6))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS' shuffle of the channel dimension (-4: ``(..., C, H, W)``) into ``groups``:
    ``view(groups, C/groups) -> transpose -> view(C)``."""
    *lead, c, h, w = x.shape
    return x.reshape(*lead, groups, c // groups, h, w).transpose(-4, -3).reshape(*lead, c, h, w)


def sampled(x: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``C/K`` channels of ``x`` (those the ops see)."""
    return x[:, : x.shape[1] // k]


def join(mixed: torch.Tensor, x: torch.Tensor, k: int, stride: int, op_weights: torch.Tensor) -> torch.Tensor:
    """Edge outputs ``(N, edges, C, H', W')`` from the mixed part ``(N, edges, C/K, H', W')`` and the
    bypassed channels of ``x`` (max-pooled 2x2 on stride-2 edges), weighted by each edge's share of
    ``op_weights`` (its edge normalisation), then shuffled."""
    rest = x[:, x.shape[1] // k:]
    if stride == 2:
        rest = F.max_pool2d(rest, 2, 2)
    bypass = rest.unsqueeze(1) * op_weights.sum(-1).view(1, -1, 1, 1, 1)
    return channel_shuffle(torch.cat([mixed, bypass.to(mixed.dtype)], 2), k)


def edge_normalisation(edge_beta: torch.Tensor, node_edges: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """``softmax(edge_beta)`` over the incoming edges of each node, one weight per edge."""
    return torch.cat([F.softmax(edge_beta[a:b], dim=-1) for a, b in node_edges])
