"""Pictures of a search: cell diagrams of a genotype, softmax(alpha) heatmaps and their evolution,
and metric curves. Plain matplotlib (Agg); each function returns a Figure."""

from __future__ import annotations

import re
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from sddarts.search_spaces.darts_space import NUM_EDGES, STEPS, edge_index
from sddarts.search_spaces.nb201 import EDGES as NB201_EDGES
from sddarts.search_spaces.operations import SHORT_NAMES

OP_COLORS = {"max_pool_3x3": "#8da0cb", "avg_pool_3x3": "#a6d854", "skip_connect": "#b3b3b3",
             "sep_conv_3x3": "#fc8d62", "sep_conv_5x5": "#e78ac3", "dil_conv_3x3": "#66c2a5", "dil_conv_5x5": "#ffd92f",
             "noise": "#e41a1c", "nor_conv_1x1": "#66c2a5", "nor_conv_3x3": "#fc8d62", "none": "#dddddd"}
SHORT = {**SHORT_NAMES, "nor_conv_1x1": "conv1", "nor_conv_3x3": "conv3"}


def _title(genotype, cell: str) -> str:
    if genotype.space == "nb201":
        return f"{genotype.space} cell: {genotype.short()}"
    return f"{genotype.space} {cell} cell: {genotype.short().split(' ')[0 if cell == 'normal' else 1]}"


def _html_label(label: str) -> str:
    """``c_{k-2}`` -> graphviz HTML with a subscript."""
    if "_{" not in label:
        return label
    return "<" + re.sub(r"_\{([^}]*)\}", r"<SUB>\1</SUB>", label) + ">"


def cell_graph(genotype, cell: str = "normal"):
    """DARTS' own cell picture, drawn by graphviz: left to right, the inputs (DARTS: ``c_{k-2}``
    (state 0) and ``c_{k-1}`` (state 1); nb201: node 0), the intermediate nodes numbered as in
    the short form, each edge labelled with its op, and the output. Returns a ``graphviz.Digraph``
    (``.pipe(format="png")``); needs Graphviz's ``dot`` to render."""
    import graphviz

    inputs, edges, outputs = genotype.graph(cell)
    g = graphviz.Digraph(engine="dot", graph_attr={"rankdir": "LR", "label": _title(genotype, cell),
                                                   "labelloc": "t", "fontname": "Helvetica", "fontsize": "12"},
                         node_attr={"style": "filled", "shape": "rect", "fontname": "Helvetica", "fontsize": "14",
                                    "penwidth": "1.5"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "11", "penwidth": "1.5"})
    for node, label in inputs.items():
        g.node(str(node), _html_label(label + (f" ({node})" if "(" not in label else "")), fillcolor="darkseagreen2")
    for node in sorted({dst for _, _, dst in edges} | set(outputs)):
        g.node(str(node), str(node), fillcolor="lightblue")
    for op, src, dst in edges:
        g.edge(str(src), str(dst), label=op, color=OP_COLORS.get(op, "black"), fontcolor="black")
    g.node("out", "<c<SUB>k</SUB>>" if genotype.space != "nb201" else "out", fillcolor="palegoldenrod")
    for node in outputs:
        g.edge(str(node), "out", color="gray50", style="dashed")
    return g


def cell_figure(genotype, cell: str = "normal"):
    """The cell picture in matplotlib, for machines without Graphviz: inputs on the left, nodes
    numbered as in the short form, the output on the right."""
    inputs, edges, outputs = genotype.graph(cell)
    nodes = sorted({dst for _, _, dst in edges} | set(outputs))
    pos = {node: (0.0, 2.2 - 2.0 * i / max(1, len(inputs) - 1)) if len(inputs) > 1 else (0.0, 1.2)
           for i, node in enumerate(inputs)}
    for i, node in enumerate(nodes):
        pos[node] = (1.6 + 1.1 * i, 1.9 - 0.85 * (i % 3) + 0.3 * (i // 3))
    pos["out"] = (1.6 + 1.1 * len(nodes) + 0.6, 1.2)
    labels = {**{n: f"${label.split(' ')[0]}$ ({n})" if "_{" in label else label for n, label in inputs.items()},
              **{n: str(n) for n in nodes}, "out": "$c_{k}$" if genotype.space != "nb201" else "out"}
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for op, src, dst in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        color = OP_COLORS.get(op, "black")
        ax.annotate("", xy=(x1 - 0.18, y1), xytext=(x0 + 0.18, y0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=2, shrinkA=4, shrinkB=4,
                                    connectionstyle="arc3,rad=0.08"))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, SHORT.get(op, op), fontsize=8, ha="center",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=color, lw=1))
    for n in outputs:
        (x0, y0), (x1, y1) = pos[n], pos["out"]
        ax.annotate("", xy=(x1 - 0.25, y1), xytext=(x0 + 0.18, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#999999", lw=1, ls="--"))
    for key, (x, y) in pos.items():
        color = "#dbe9f6" if key in inputs else "#fde0c5" if key == "out" else "#e8f5e0"
        ax.text(x, y, labels[key], ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.35", fc=color, ec="#555555"))
    ax.set_xlim(-0.5, pos["out"][0] + 0.5)
    ax.set_ylim(-0.4, 2.7)
    ax.axis("off")
    ax.set_title(_title(genotype, cell), fontsize=9)
    fig.tight_layout()
    return fig


def edge_labels(rows: int) -> list[str]:
    """Row labels of an alpha matrix: ``src->node`` for DARTS' 14 edges, NAS-Bench-201's 6."""
    if rows == len(NB201_EDGES):
        return [f"{src}->{dst}" for src, dst in NB201_EDGES]
    labels = [""] * NUM_EDGES
    for node in range(STEPS):
        for src in range(node + 2):
            labels[edge_index(src, node)] = f"{src}->{node + 2}"
    return labels


def _uniform(ops: Sequence[Sequence[str]]) -> bool:
    return all(tuple(e) == tuple(ops[0]) for e in ops)


def alpha_heatmap(alphas: dict[str, torch.Tensor], ops: dict[str, Sequence[Sequence[str]]]):
    """softmax(alpha) per edge (rows) and candidate op (columns), for every cell; where the ops
    differ per edge (S1) each square is labelled with its op."""
    fig, axes = plt.subplots(1, len(alphas), figsize=(5 * len(alphas), 5), squeeze=False)
    for ax, (name, alpha) in zip(axes[0], alphas.items()):
        w = F.softmax(torch.as_tensor(alpha).detach().float().cpu(), dim=-1).numpy()
        edge_ops = ops[name]
        im = ax.imshow(w, cmap="viridis", vmin=0, vmax=max(float(w.max()), 1e-6), aspect="auto")
        if _uniform(edge_ops):
            ax.set_xticks(range(w.shape[1]), [SHORT.get(p, p) for p in edge_ops[0]], rotation=45)
        else:
            ax.set_xticks(range(w.shape[1]), [f"op {j + 1}" for j in range(w.shape[1])])
            for r, row in enumerate(edge_ops):
                for j, op in enumerate(row):
                    ax.text(j, r, SHORT.get(op, op), ha="center", va="center", fontsize=6, color="white")
        ax.set_yticks(range(len(w)), edge_labels(len(w)), fontsize=7)
        ax.set_title(f"softmax(alpha), {name} cell")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def alpha_evolution(history: Sequence[Sequence[np.ndarray]], ops: Sequence[Sequence[Sequence[str]]]):
    """Mean softmax weight of each op over the edges that offer it, per epoch, for every cell.
    ``history``: per epoch, one (edges, ops) array per cell; ``ops``: per cell, each edge's ops."""
    cells = len(ops)
    fig, axes = plt.subplots(1, cells, figsize=(5 * cells, 3.6), sharey=True, squeeze=False)
    epochs = np.arange(1, len(history) + 1)
    for idx, ax in enumerate(axes[0]):
        names = list(dict.fromkeys(op for edge in ops[idx] for op in edge))
        for op in names:
            mask = np.array([[o == op for o in edge] for edge in ops[idx]])
            series = [float((h[idx] * mask).sum() / mask.sum()) for h in history]
            ax.plot(epochs, series, label=SHORT.get(op, op), color=OP_COLORS.get(op, "black"))
        name = ("normal", "reduce")[idx] if cells == 2 else "the"
        ax.set(xlabel="epoch", title=f"{name} cell", ylabel="mean softmax(alpha)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


CURVES = ("hessian_eig", "param_free_share", "skip_count", "alpha_max_mean",
          "discretization_gap", "derived_val_acc", "train_ce", "val_loss")


def curves(history: Sequence[dict], keys: Sequence[str] = CURVES):
    """One panel per metric over epochs, four to a row (epochs without the metric are skipped):
    sharpness beside the collapse diagnostics, then the held-out figures. The training panel is
    the cross-entropy alone, so DARTS and SD-DARTS curves compare."""
    rows = (len(keys) + 3) // 4
    fig, axes = plt.subplots(rows, min(4, len(keys)), figsize=(3.4 * min(4, len(keys)), 3 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        points = [(m["epoch"], m[key]) for m in history if key in m]
        if points:
            ax.plot(*zip(*points), "o-")
        ax.set(xlabel="epoch", title=key)
    fig.tight_layout()
    return fig
