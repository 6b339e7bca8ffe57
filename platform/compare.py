"""``sddarts compare``: plain DARTS against SD-DARTS with the same seeds and settings, run as one
small grid sweep, with a parent run holding the side-by-side curves and the final figures."""

from __future__ import annotations

import json
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sddarts.platform import tracking  # noqa: E402
from sddarts.platform.search import RunOptions  # noqa: E402
from sddarts.platform.sweep import build_tuner, fit_tuner, max_concurrent  # noqa: E402
from sddarts.trainables.config import SearchConfig  # noqa: E402

CURVES = ("hessian_eig", "discretization_gap")
FINAL = ("val_acc", "derived_val_acc", "discretization_gap", "hessian_eig")


def method_of(config: dict[str, Any]) -> str:
    return "SD-DARTS" if config["sd_weight"] > 0 and config["base"]["vote_count"] > 0 else "DARTS"


def curves_figure(histories: dict[str, list]):
    """Mean and spread (min..max over seeds) of each curve over epochs, DARTS beside SD-DARTS."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.5))
    for ax, key in zip(axes, CURVES):
        for method, frames in sorted(histories.items()):
            rows = [f[["epoch", key]].dropna() for f in frames if key in f.columns]
            if not rows:
                continue
            epochs = sorted(set().union(*[set(r["epoch"]) for r in rows]))
            values = np.array([[float(r.loc[r["epoch"] == e, key].mean()) if (r["epoch"] == e).any() else np.nan
                                for e in epochs] for r in rows])
            mean = np.nanmean(values, axis=0)
            ax.plot(epochs, mean, "o-", label=f"{method} (mean of {len(rows)})")
            ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2)
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    fig.tight_layout()
    return fig


def run_compare(base: SearchConfig, seeds: int, ropts: RunOptions, resources: dict[str, float]) -> dict[str, Any]:
    """Runs DARTS (sd_weight=0) and SD-DARTS (the base config) for seeds 0..seeds-1."""
    import ray.tune

    uri = ropts.tracking_uri
    exp_id = tracking.experiment_id(uri, ropts.experiment)
    parent = tracking.open_run(uri, exp_id, ropts.name, {"kind": "compare", "dataset": base.dataset})
    client = tracking.client(uri)
    client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
    client.log_param(parent, "seeds", seeds)
    grid = {"sd_weight": ray.tune.grid_search([0.0, base.sd_weight]), "seed": ray.tune.grid_search(list(range(seeds)))}
    started = time.time()
    tuner = build_tuner(base, ropts, exp_id, parent, grid, ["sd_weight", "seed"], ray.tune.TuneConfig(
        metric="derived_val_acc", mode="max", max_concurrent_trials=max_concurrent(base, resources, 0)))
    results = fit_tuner(tuner, uri, parent, 2 * seeds)

    histories: dict[str, list] = {}
    rows = []
    for result in results:
        method = method_of(result.config)
        frame = result.metrics_dataframe
        histories.setdefault(method, []).append(frame)
        last = frame.iloc[-1]
        rows.append({"method": method, "seed": result.config["seed"], **{k: last.get(k) for k in FINAL},
                     "mlflow_run_id": last.get("mlflow_run_id")})
    import pandas as pd

    table = pd.DataFrame(rows).sort_values(["method", "seed"])
    summary = table.groupby("method")[list(FINAL)].agg(["mean", "std"])
    client.log_text(parent, table.to_csv(index=False), "comparison.csv")
    client.log_text(parent, summary.to_csv(), "comparison_summary.csv")
    client.log_figure(parent, curves_figure(histories), "plots/comparison.png")
    plt.close("all")
    for method, group in table.groupby("method"):
        for key in FINAL:
            if group[key].notna().any():
                client.log_metric(parent, f"{method.lower().replace('-', '_')}_{key}", float(group[key].mean()))
    tracking.end_run(uri, parent, "FINISHED")
    return {"table": table, "summary": summary, "parent_run_id": parent, "experiment_id": exp_id,
            "wall_s": time.time() - started, "errors": len(results.errors)}
