"""What a search leaves in its MLflow run beside the per-epoch metrics: cell pictures, the alpha
heatmap and its evolution, the curves, alpha and the checkpoint.

``log_search_records`` works from a saved checkpoint alone, so the driver can log the records of
the last completed epoch of any search: one that finished, and a sweep trial the scheduler
stopped (Tune ends such a trial at a report, before its workers could log anything more).
"""

from __future__ import annotations

import os
from typing import Any

from sddarts.search_spaces import Genotype
from sddarts.trainables.run_logger import RunLogger
from sddarts.trainables.runtime import STATE_FILE


def log_cell_pictures(log: RunLogger, genotype: Genotype, folder: str) -> None:
    """The normal and reduction cell pictures, PNG and SVG, under ``folder``: drawn by Graphviz
    as DARTS draws them, or by matplotlib where Graphviz's ``dot`` is not installed."""
    import matplotlib.pyplot as plt

    from sddarts.search_spaces import plot

    for cell in ("normal", "reduce"):
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


def log_genotype_and_alpha(log: RunLogger, genotype: Genotype, alpha_normal, alpha_reduce) -> None:
    """The current genotype (``genotype.json`` and the ``genotype`` tag) and alpha (``alpha.json``)."""
    log.set_tags({"genotype": genotype.short()})
    log.log_dict(genotype.to_dict(), "genotype.json")
    log.log_dict({"alpha_normal": alpha_normal.tolist(), "alpha_reduce": alpha_reduce.tolist()}, "alpha.json")


def load_saved(checkpoint_dir: str) -> dict[str, Any]:
    """The saved state of a search checkpoint folder, on the CPU."""
    import torch

    return torch.load(os.path.join(checkpoint_dir, STATE_FILE), map_location="cpu", weights_only=False)


def log_search_records(log: RunLogger, checkpoint_dir: str) -> dict[str, Any]:
    """Logs the records of the epoch a checkpoint ends: ``genotype.json``, ``alpha.json``, the
    checkpoint itself, the cell pictures, the alpha heatmap and evolution, and the curves.
    Returns the checkpoint's metrics."""
    import matplotlib.pyplot as plt

    from sddarts.search_spaces import plot

    saved = load_saved(checkpoint_dir)
    metrics = saved["metrics"]
    genotype = Genotype.from_json(metrics["genotype_json"])
    alpha_normal, alpha_reduce = saved["net"]["arch.normal"], saved["net"]["arch.reduce"]
    log.set_tags({"records_epoch": saved["epoch"]})
    log_genotype_and_alpha(log, genotype, alpha_normal, alpha_reduce)
    log.log_file(os.path.join(checkpoint_dir, STATE_FILE), "checkpoint")
    log_cell_pictures(log, genotype, "plots")
    log.log_figure(plot.alpha_heatmap(alpha_normal, alpha_reduce), "plots/alpha_heatmap.png")
    log.log_figure(plot.alpha_evolution(saved["alpha_history"]), "plots/alpha_evolution.png")
    log.log_figure(plot.curves(saved["history"]), "plots/curves.png")
    plt.close("all")
    return metrics
