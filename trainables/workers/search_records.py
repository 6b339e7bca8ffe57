"""What a search leaves in its MLflow run beside the per-epoch metrics: cell pictures, the alpha
heatmap and its evolution, the curves, alpha and the checkpoint.

``log_search_records`` works from a saved checkpoint alone, so the driver can log the records of
the last completed epoch of any search: one that finished, and a sweep trial the scheduler
stopped (Tune ends such a trial at a report, before its workers could log anything more).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sddarts.search_spaces import genotype_from_json, get_space
from sddarts.trainables.data.nb201_bench import FIGURES
from sddarts.trainables.workers.run_logger import RunLogger
from sddarts.trainables.workers.checkpoint import STATE_FILE


def log_cell_pictures(log: RunLogger, genotype, folder: str) -> None:
    """The pictures of the genotype's cells (normal and reduce; nb201: its one cell), PNG and
    SVG, under ``folder``: drawn by Graphviz as DARTS draws them, or by matplotlib where
    Graphviz's ``dot`` is not installed."""
    import matplotlib.pyplot as plt

    from sddarts.search_spaces import plot

    for cell in genotype.cells:
        try:
            graph = plot.cell_graph(genotype, cell)
            png, svg = graph.pipe(format="png"), graph.pipe(format="svg", encoding="utf-8")
        except Exception:  # no graphviz package or no `dot`: the matplotlib drawing
            fig = plot.cell_figure(genotype, cell)
            log.log_figure(fig, f"{folder}/cell_{cell}.png")
            log.log_figure(fig, f"{folder}/cell_{cell}.svg")
            plt.close(fig)
            continue
        log.log_bytes(png, f"{folder}/cell_{cell}.png")
        log.log_text(svg, f"{folder}/cell_{cell}.svg")


def alpha_dict(state: dict[str, Any]) -> dict[str, Any]:
    """alpha per cell (``normal``, ``reduce``; nb201: ``cell``) from a supernet's state dict."""
    return {name[len("arch."):]: value for name, value in state.items()
            if name.startswith("arch.") and not name.startswith("arch.edge_")}  # not PC-DARTS' edge weights


def log_genotype_and_alpha(log: RunLogger, genotype, alphas: dict[str, Any]) -> None:
    """The current genotype (``genotype.json``, ``genotype.py`` as DARTS or NAS-Bench-201 write it,
    and the ``genotype`` tag) and alpha per cell
    (``alpha.json``: ``alpha_<cell>`` and each edge's candidate ops ``ops_<cell>``)."""
    space = get_space(genotype.space)
    log.set_tags({"genotype": genotype.short()})
    log.log_dict(genotype.to_dict(), "genotype.json")
    log.log_text(genotype.to_python(), "genotype.py")
    record: dict[str, Any] = {"space": genotype.space}
    for cell, alpha in alphas.items():
        record[f"alpha_{cell}"] = alpha.tolist()
        record[f"ops_{cell}"] = [list(ops) for ops in space.edge_ops(cell)]
    log.log_dict(record, "alpha.json")


def load_saved(checkpoint_dir: str) -> dict[str, Any]:
    """The saved state of a search checkpoint folder, on the CPU."""
    from sddarts.trainables.workers.checkpoint import load_state

    return load_state(os.path.join(checkpoint_dir, STATE_FILE))


def log_search_records(log: RunLogger, checkpoint_dir: str) -> dict[str, Any]:
    """Logs the records of the epoch a checkpoint ends: ``genotype.json``, ``alpha.json``, the
    checkpoint itself, the cell pictures, the alpha heatmap and evolution, and the curves.
    Returns the checkpoint's metrics."""
    import matplotlib.pyplot as plt

    from sddarts.search_spaces import plot

    saved = load_saved(checkpoint_dir)
    metrics = saved["metrics"]
    genotype = genotype_from_json(metrics["genotype_json"])
    space = get_space(genotype.space)
    alphas = alpha_dict(saved["net"])
    tags = {"records_epoch": saved["epoch"]}
    if "es_returned_epoch" in metrics:
        tags.update(es_stopped_epoch=metrics["es_stopped_epoch"], es_returned_epoch=metrics["es_returned_epoch"])
    log.set_tags(tags)
    log_genotype_and_alpha(log, genotype, alphas)
    log.log_dict({str(e): genotype_from_json(g).short() for e, g in saved.get("genotypes", {}).items()}, "genotypes.json")
    log.log_file(os.path.join(checkpoint_dir, STATE_FILE), "checkpoint")
    log_cell_pictures(log, genotype, "plots")
    ops = {cell: space.edge_ops(cell) for cell in alphas}
    log.log_figure(plot.alpha_heatmap(alphas, ops), "plots/alpha_heatmap.png")
    history = [[np.asarray(a) for a in epoch] for epoch in saved["alpha_history"]]
    log.log_figure(plot.alpha_evolution(history, [ops[c] for c in alphas]), "plots/alpha_evolution.png")
    bench = tuple(k for k in FIGURES if any(k in m for m in saved["history"]))
    log.log_figure(plot.curves(saved["history"], plot.CURVES + bench), "plots/curves.png")
    plt.close("all")
    return metrics


def log_final_records(tracking_uri: str, run_id: str, checkpoint) -> None:
    """Logs a search's final records (pictures, alpha, checkpoint) from ``checkpoint`` (a
    ``ray.train.Checkpoint``, local or remote; None: nothing to log) into run ``run_id``."""
    if checkpoint is None:
        return
    with checkpoint.as_directory() as d:
        log_search_records(RunLogger(tracking_uri, run_id), d)
