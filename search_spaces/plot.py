"""Pictures of a search: cell diagrams of a genotype, softmax(alpha) heatmaps and their evolution,
and metric curves. Plain matplotlib (Agg); each function returns a Figure."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sddarts.search_spaces.genotypes import Genotype  # noqa: E402
from sddarts.search_spaces.operations import PRIMITIVES, SHORT_NAMES  # noqa: E402
from sddarts.search_spaces.supernet import STEPS, edge_index  # noqa: E402

OP_COLORS = {"max_pool_3x3": "#8da0cb", "avg_pool_3x3": "#a6d854", "skip_connect": "#b3b3b3",
             "sep_conv_3x3": "#fc8d62", "sep_conv_5x5": "#e78ac3", "dil_conv_3x3": "#66c2a5", "dil_conv_5x5": "#ffd92f"}


def cell_graph(genotype: Genotype, cell: str = "normal"):
    """DARTS' own cell picture, drawn by graphviz: left to right, inputs ``c_{k-2}`` (state 0) and
    ``c_{k-1}`` (state 1), intermediate nodes numbered 2-5 as in the short form, each edge labelled
    with its op, and the output ``c_{k}``. Returns a ``graphviz.Digraph``
    (``.pipe(format="png")``); needs Graphviz's ``dot`` to render."""
    import graphviz

    short = genotype.short().split(" ")[0 if cell == "normal" else 1]
    edges = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    g = graphviz.Digraph(engine="dot", graph_attr={"rankdir": "LR", "label": f"{cell} cell: {short}",
                                                   "labelloc": "t", "fontname": "Helvetica", "fontsize": "12"},
                         node_attr={"style": "filled", "shape": "rect", "fontname": "Helvetica", "fontsize": "14",
                                    "penwidth": "1.5"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "11", "penwidth": "1.5"})
    g.node("0", "<c<SUB>k-2</SUB> (0)>", fillcolor="darkseagreen2")
    g.node("1", "<c<SUB>k-1</SUB> (1)>", fillcolor="darkseagreen2")
    for node in range(2, 2 + STEPS):
        g.node(str(node), str(node), fillcolor="lightblue")
    for i, (op, src) in enumerate(edges):
        g.edge(str(src), str(2 + i // 2), label=op, color=OP_COLORS[op], fontcolor="black")
    g.node("out", "<c<SUB>k</SUB>>", fillcolor="palegoldenrod")
    for node in concat:
        g.edge(str(node), "out", color="gray50", style="dashed")
    return g


def cell_figure(genotype: Genotype, cell: str = "normal"):
    """The cell picture in matplotlib, for machines without Graphviz: inputs c_{k-2} (0) and
    c_{k-1} (1), nodes 2-5 as in the short form, output c_{k}."""
    edges = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    pos = {0: (0.0, 2.2), 1: (0.0, 0.2)}
    for i in range(STEPS):
        pos[i + 2] = (1.6 + 1.1 * i, 1.9 - 0.85 * (i % 3) + 0.3 * (i // 3))
    pos["out"] = (1.6 + 1.1 * STEPS + 0.6, 1.2)
    labels = {0: "$c_{k-2}$ (0)", 1: "$c_{k-1}$ (1)", **{i + 2: str(i + 2) for i in range(STEPS)}, "out": "$c_{k}$"}
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for i, (op, src) in enumerate(edges):
        (x0, y0), (x1, y1) = pos[src], pos[i // 2 + 2]
        ax.annotate("", xy=(x1 - 0.18, y1), xytext=(x0 + 0.18, y0),
                    arrowprops=dict(arrowstyle="-|>", color=OP_COLORS[op], lw=2, shrinkA=4, shrinkB=4,
                                    connectionstyle="arc3,rad=0.08"))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, SHORT_NAMES[op], fontsize=8, ha="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=OP_COLORS[op], lw=1))
    for n in concat:
        (x0, y0), (x1, y1) = pos[n], pos["out"]
        ax.annotate("", xy=(x1 - 0.25, y1), xytext=(x0 + 0.18, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#999999", lw=1, ls="--"))
    for key, (x, y) in pos.items():
        color = "#dbe9f6" if key in (0, 1) else "#fde0c5" if key == "out" else "#e8f5e0"
        ax.text(x, y, labels[key], ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="#555555"))
    ax.set_xlim(-0.5, pos["out"][0] + 0.5)
    ax.set_ylim(-0.4, 2.7)
    ax.axis("off")
    ax.set_title(f"{cell} cell: {genotype.short().split(' ')[0 if cell == 'normal' else 1]}", fontsize=9)
    fig.tight_layout()
    return fig


def edge_labels() -> list[str]:
    labels = [""] * sum(2 + i for i in range(STEPS))
    for node in range(STEPS):
        for src in range(node + 2):
            labels[edge_index(src, node)] = f"{src}->{node + 2}"
    return labels


def alpha_heatmap(alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor):
    """softmax(alpha) per edge (rows) and op (columns), for both cells."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, alpha, name in zip(axes, (alpha_normal, alpha_reduce), ("normal", "reduce")):
        w = F.softmax(alpha.detach().float().cpu(), dim=-1).numpy()
        im = ax.imshow(w, cmap="viridis", vmin=0, vmax=max(float(w.max()), 1e-6), aspect="auto")
        ax.set_xticks(range(len(PRIMITIVES)), [SHORT_NAMES[p] for p in PRIMITIVES], rotation=45)
        ax.set_yticks(range(len(w)), edge_labels(), fontsize=7)
        ax.set_title(f"softmax(alpha), {name} cell")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def alpha_evolution(history: Sequence[tuple[np.ndarray, np.ndarray]]):
    """Mean softmax weight of each op over the edges, per epoch, for both cells.
    ``history``: one (softmax normal, softmax reduce) pair of (14, 8) arrays per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    epochs = np.arange(1, len(history) + 1)
    for ax, idx, name in zip(axes, (0, 1), ("normal", "reduce")):
        series = np.stack([h[idx].mean(axis=0) for h in history])  # (epochs, ops)
        for j, op in enumerate(PRIMITIVES):
            ax.plot(epochs, series[:, j], label=SHORT_NAMES[op], color=OP_COLORS.get(op, "black"))
        ax.set(xlabel="epoch", title=f"{name} cell", ylabel="mean softmax(alpha)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def curves(history: Sequence[dict], keys: Sequence[str] = ("hessian_eig", "discretization_gap", "train_ce", "val_loss")):
    """One panel per metric over epochs (epochs without the metric are skipped). The training
    panel is the cross-entropy alone, so DARTS and SD-DARTS curves compare."""
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3))
    for ax, key in zip(np.atleast_1d(axes), keys):
        points = [(m["epoch"], m[key]) for m in history if key in m]
        if points:
            ax.plot(*zip(*points), "o-")
        ax.set(xlabel="epoch", title=key)
    fig.tight_layout()
    return fig
