"""``sddarts compare``: plain DARTS against SD-DARTS with the same seeds and settings, run as one
small grid sweep, with a parent run holding the side-by-side curves and the final figures."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sddarts.platform import runs  # noqa: E402
from sddarts.platform.flags import add_config_flags  # noqa: E402
from sddarts.platform.cluster import connect  # noqa: E402
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs  # noqa: E402
from sddarts.platform.trials import TRIAL_DRIVER_CPU, build_tuner, fit_tuner, max_concurrent  # noqa: E402
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig  # noqa: E402

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


def add_parser(sub) -> None:
    c = sub.add_parser("compare", help="plain DARTS vs SD-DARTS with the same seeds and settings (a grid sweep)")
    add_config_flags(c, SearchConfig, SEARCH_PRESETS, "digits-demo", {"num_workers": 1})
    c.add_argument("--seeds", type=int, default=2, help="seeds 0..K-1 for each method (default 2)")
    add_run_flags(c, None)
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "compare", restore_config=False)
    if args.seeds < 1:
        raise ConfigError(f"seeds must be >= 1 (got {args.seeds})")
    if not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts compare {ropts.name}: DARTS vs SD-DARTS, seeds 0..{args.seeds - 1}, {base.epochs} epochs", flush=True)
    try:
        out = run_compare(base, args.seeds, ropts, resources)
    except KeyboardInterrupt:
        print("\ninterrupted; the MLflow parent run is marked KILLED", file=sys.stderr)
        return 130
    print(f"\ncompare {ropts.name} finished in {out['wall_s']:.0f}s ({out['completed']} of {out['trials']} trials "
          f"completed; failed ones are left out); final epoch, mean (std) over seeds:")
    print(out["summary"].round(4).to_string())
    print(f"MLflow parent run id: {out['parent_run_id']}")
    print(f"browse: {runs.run_url(ropts.tracking_uri, out['experiment_id'], out['parent_run_id'])}")
    return 0


def run_compare(base: SearchConfig, seeds: int, ropts: RunOptions, resources: dict[str, float]) -> dict[str, Any]:
    """Runs DARTS (sd_weight=0) and SD-DARTS (the base config) for seeds 0..seeds-1. Only trials
    that ran all their epochs enter the table and the summary; the others are counted."""
    import pandas as pd
    import ray.tune

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "compare", "dataset": base.dataset})
    client = runs.client(uri)
    started = time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        client.log_param(parent, "seeds", seeds)
        grid = {"sd_weight": ray.tune.grid_search([0.0, base.sd_weight]), "seed": ray.tune.grid_search(list(range(seeds)))}
        tuner = build_tuner(base, ropts, exp_id, parent, {"metric": "derived_val_acc"}, grid, ["sd_weight", "seed"],
                            2 * seeds, ray.tune.TuneConfig(max_concurrent_trials=max_concurrent(base, resources, 0)))
        results = fit_tuner(tuner, 2 * seeds)
        histories: dict[str, list] = {}
        rows = []
        for result in results:
            frame = result.metrics_dataframe
            if result.error or frame is None or frame.empty or frame["epoch"].max() < base.epochs:
                continue
            method = method_of(result.config)
            frame = frame[frame["epoch"].notna()].drop_duplicates("epoch", keep="last")
            histories.setdefault(method, []).append(frame)
            last = frame.iloc[-1]
            rows.append({"method": method, "seed": result.config["seed"], **{k: last.get(k) for k in FINAL},
                         "mlflow_run_id": last.get("mlflow_run_id")})
        if not rows:
            raise RuntimeError(f"none of the {len(results)} trials completed its {base.epochs} epochs")
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
        client.log_metric(parent, "trials_completed", len(table))
        client.log_metric(parent, "trials_failed", len(results) - len(table))
    runs.end_run(uri, parent, "FINISHED")
    return {"table": table, "summary": summary, "parent_run_id": parent, "experiment_id": exp_id,
            "wall_s": time.time() - started, "trials": len(results), "completed": len(table)}
