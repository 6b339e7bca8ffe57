"""``sddarts compare``: plain DARTS against SD-DARTS with the same seeds and settings, run as one
small grid sweep, with a parent run holding the side-by-side curves, the final figures per method
(mean and 95% confidence interval over seeds) and a paired test of the two methods."""

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
from sddarts.platform.stats import mean_ci, paired_test  # noqa: E402
from sddarts.platform.trials import (TRIAL_DRIVER_CPU, add_proxy_flags, build_tuner, fit_tuner,  # noqa: E402
                                     max_concurrent, proxy_settings, ran_to_end)
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig  # noqa: E402

CURVES = ("hessian_eig", "param_free_share", "discretization_gap")
FINAL = ("hessian_eig", "discretization_gap", "param_free_share", "skip_count", "derived_val_acc", "val_acc")


def method_of(config: dict[str, Any]) -> str:
    return "SD-DARTS" if config["sd_weight"] > 0 and config["base"]["vote_count"] > 0 else "DARTS"


def curves_figure(histories: dict[str, list]):
    """Mean and spread (min..max over seeds) of each curve over epochs, DARTS beside SD-DARTS."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.5), squeeze=False)
    axes = axes[0]
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
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 for each method (default 5)")
    add_proxy_flags(c.add_argument_group("proxy retrain (adds proxy_acc to the comparison)"))
    add_run_flags(c, None)
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "compare", restore_config=False)
    if args.seeds < 1:
        raise ConfigError(f"seeds must be >= 1 (got {args.seeds})")
    if not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    proxy = proxy_settings(args, base)
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts compare {ropts.name}: DARTS vs SD-DARTS in space {base.space}, seeds 0..{args.seeds - 1}, "
          f"{base.epochs} epochs", flush=True)
    try:
        out = run_compare(base, args.seeds, ropts, resources, proxy)
    except KeyboardInterrupt:
        print("\ninterrupted; the MLflow parent run is marked KILLED", file=sys.stderr)
        return 130
    print(f"\ncompare {ropts.name} finished in {out['wall_s']:.0f}s ({out['completed']} of {out['trials']} trials "
          f"completed; failed or stopped ones are left out). Final epoch, mean [95% CI] over seeds, and the paired "
          f"t-test of SD-DARTS - DARTS over the seeds both completed:")
    print(format_stats(out["stats"]))
    print(f"MLflow parent run id: {out['parent_run_id']}")
    print(f"browse: {runs.run_url(ropts.tracking_uri, out['experiment_id'], out['parent_run_id'])}")
    return 0


def comparison_stats(table, metrics: tuple[str, ...]):
    """Per metric: each method's mean and 95% confidence interval over its seeds, and the paired
    t-test of SD-DARTS - DARTS over the seeds both methods completed."""
    import pandas as pd

    rows = []
    for key in metrics:
        if key not in table or not table[key].notna().any():
            continue
        values = {m: dict(zip(g["seed"], g[key].astype(float))) for m, g in table.groupby("method")}
        row: dict[str, Any] = {"metric": key}
        for method in ("DARTS", "SD-DARTS"):
            mean, low, high = mean_ci(list(values.get(method, {}).values()))
            row.update({f"{method} n": len(values.get(method, {})), f"{method} mean": mean,
                        f"{method} ci_low": low, f"{method} ci_high": high})
        test = paired_test(values.get("DARTS", {}), values.get("SD-DARTS", {}))
        row.update({"diff": test["diff"], "diff ci_low": test["diff_low"], "diff ci_high": test["diff_high"],
                    "pairs": test["pairs"], "t": test["t"], "p": test["p"]})
        rows.append(row)
    return pd.DataFrame(rows)


def format_stats(stats) -> str:
    """The comparison as a fixed-width table: mean [95% CI] (n) per method, then the paired test."""
    def interval(r, m: str) -> str:
        if not r[f"{m} n"]:
            return "-"
        ci = "" if np.isnan(r[f"{m} ci_low"]) else f" [{r[f'{m} ci_low']:.4g}, {r[f'{m} ci_high']:.4g}]"
        return f"{r[f'{m} mean']:.4g}{ci} (n={r[f'{m} n']})"

    lines = [("metric", "DARTS", "SD-DARTS", "SD - DARTS [95% CI]", "paired t-test")]
    for _, r in stats.iterrows():
        diff = "-" if np.isnan(r["diff"]) else f"{r['diff']:+.4g}" + (
            "" if np.isnan(r["diff ci_low"]) else f" [{r['diff ci_low']:+.4g}, {r['diff ci_high']:+.4g}]")
        test = "-" if np.isnan(r["p"]) else f"t={r['t']:.2f}, p={r['p']:.3g} ({r['pairs']} pairs)"
        lines.append((r["metric"], interval(r, "DARTS"), interval(r, "SD-DARTS"), diff, test))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join("  " + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def intervals_figure(stats):
    """One panel per metric: each method's mean with its 95% confidence interval."""
    n = len(stats)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.2), squeeze=False)
    for ax, (_, r) in zip(axes[0], stats.iterrows()):
        for x, (method, color) in enumerate((("DARTS", "tab:blue"), ("SD-DARTS", "tab:orange"))):
            mean, low, high = r[f"{method} mean"], r[f"{method} ci_low"], r[f"{method} ci_high"]
            if np.isnan(mean):
                continue
            err = None if np.isnan(low) else [[mean - low], [high - mean]]
            ax.errorbar([x], [mean], yerr=err, fmt="o", color=color, capsize=6, lw=2)
        p = "" if np.isnan(r["p"]) else f"\npaired p={r['p']:.2g}"
        ax.set(xticks=[0, 1], xticklabels=["DARTS", "SD-DARTS"], xlim=(-0.6, 1.6), title=f"{r['metric']}{p}")
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("final epoch: mean and 95% confidence interval over seeds", fontsize=9)
    fig.tight_layout()
    return fig


def run_compare(base: SearchConfig, seeds: int, ropts: RunOptions, resources: dict[str, float],
                proxy: dict[str, int] | None = None) -> dict[str, Any]:
    """Runs DARTS (sd_weight=0) and SD-DARTS (the base config) for seeds 0..seeds-1 (with
    ``proxy["proxy_epochs"]``, each genotype's proxy retrain too). Only trials that completed
    enter the table and the statistics; failed or stopped ones are counted."""
    import pandas as pd
    import ray.tune

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    proxy = proxy or {"proxy_epochs": 0}
    metrics = FINAL + (("proxy_acc",) if proxy.get("proxy_epochs") else ())
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "compare", "space": base.space, "dataset": base.dataset})
    client = runs.client(uri)
    started = time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        client.log_param(parent, "seeds", seeds)
        grid = {"sd_weight": ray.tune.grid_search([0.0, base.sd_weight]), "seed": ray.tune.grid_search(list(range(seeds)))}
        tuner = build_tuner(base, ropts, exp_id, parent, {"metric": "derived_val_acc", **proxy}, grid, ["sd_weight", "seed"],
                            2 * seeds, ray.tune.TuneConfig(max_concurrent_trials=max_concurrent(base, resources, 0)))
        results = fit_tuner(tuner, 2 * seeds)
        histories: dict[str, list] = {}
        rows = []
        for result in results:
            frame = result.metrics_dataframe
            if result.error or frame is None or frame.empty or not ran_to_end(result.metrics, base.epochs):
                continue
            method = method_of(result.config)
            final = result.metrics  # the trial's last report: the last epoch (and proxy_acc)
            frame = frame[frame["epoch"].notna()].drop_duplicates("epoch", keep="last")
            histories.setdefault(method, []).append(frame)
            rows.append({"method": method, "seed": result.config["seed"], **{k: final.get(k) for k in metrics},
                         "es_returned_epoch": final.get("es_returned_epoch"), "mlflow_run_id": final.get("mlflow_run_id")})
        if not rows:
            raise RuntimeError(f"none of the {len(results)} trials completed")
        table = pd.DataFrame(rows).sort_values(["method", "seed"])
        stats = comparison_stats(table, metrics)
        client.log_text(parent, table.to_csv(index=False), "comparison.csv")
        client.log_text(parent, stats.to_csv(index=False), "comparison_stats.csv")
        client.log_text(parent, format_stats(stats), "comparison_stats.txt")
        client.log_figure(parent, curves_figure(histories), "plots/comparison.png")
        client.log_figure(parent, intervals_figure(stats), "plots/comparison_intervals.png")
        plt.close("all")
        for _, r in stats.iterrows():
            for method in ("DARTS", "SD-DARTS"):
                if not np.isnan(r[f"{method} mean"]):
                    client.log_metric(parent, f"{method.lower().replace('-', '_')}_{r['metric']}", float(r[f"{method} mean"]))
            if not np.isnan(r["p"]):
                client.log_metric(parent, f"paired_p_{r['metric']}", float(r["p"]))
        client.log_metric(parent, "trials_completed", len(table))
        client.log_metric(parent, "trials_failed", len(results) - len(table))
    runs.end_run(uri, parent, "FINISHED")
    return {"table": table, "stats": stats, "parent_run_id": parent, "experiment_id": exp_id,
            "wall_s": time.time() - started, "trials": len(results), "completed": len(table)}
