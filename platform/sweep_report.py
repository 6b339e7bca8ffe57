"""What a finished sweep leaves on its parent MLflow run: best config and genotype, a table of all
trials, and plots (optimisation history, parameter importances, the metric against each knob)."""

from __future__ import annotations

import json
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402

TABLE_COLUMNS = ["epoch", "derived_val_acc", "val_acc", "discretization_gap", "hessian_eig", "sd_loss",
                 "teachers", "mlflow_run_id", "genotype"]


def trials_table(results, params: list[str]):
    """One row per trial: its sampled knobs and its last reported metrics."""
    df = results.get_dataframe()
    keep = ["trial_id"] + [f"config/{p}" for p in params] + [c for c in TABLE_COLUMNS if c in df.columns]
    return df[[c for c in keep if c in df.columns]].rename(columns={f"config/{p}": p for p in params})


def _importances(table, params: list[str], metric: str, mode: str) -> dict[str, float]:
    """PED-ANOVA importances (Optuna's default) of the knobs, from the finished trials."""
    rows = table.dropna(subset=[metric])
    if len(rows) < 3:
        return {}
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for _, row in rows.iterrows():
        values = {p: row[p] for p in params}
        dists = {p: (optuna.distributions.CategoricalDistribution(sorted(set(rows[p])))
                     if isinstance(values[p], str) else
                     optuna.distributions.FloatDistribution(float(rows[p].min()), float(rows[p].max()) + 1e-12))
                 for p in params}
        study.add_trial(optuna.trial.create_trial(params={p: (v if isinstance(v, str) else float(v)) for p, v in values.items()},
                                                  distributions=dists, value=float(row[metric])))
    try:
        return optuna.importance.get_param_importances(study)
    except Exception:  # too few distinct values to tell
        return {}


def plot_history(table, metric: str, mode: str):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = list(table[metric])
    best = (max if mode == "max" else min)
    running = [best(values[: i + 1]) for i in range(len(values))]
    ax.plot(range(len(values)), values, "o", label="trial")
    ax.plot(range(len(values)), running, "-", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="optimisation history")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_importances(importances: dict[str, float]):
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel="importance (PED-ANOVA)", title="parameter importances")
    fig.tight_layout()
    return fig


def plot_knobs(table, params: list[str], metric: str):
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 3), squeeze=False)
    for ax, p in zip(axes[0], params):
        ax.plot(table[p], table[metric], "o")
        ax.set(xlabel=p, ylabel=metric)
        if p in ("sd_weight", "teacher_interval") and (table[p] > 0).all():
            ax.set_xscale("log")
    fig.suptitle(f"{metric} against each knob")
    fig.tight_layout()
    return fig


def log_sweep_summary(client, parent: str, results, sopts, params: list[str]) -> dict[str, Any]:
    """Logs the summary artifacts to the parent run; returns the best trial's config and genotype."""
    table = trials_table(results, params)
    client.log_text(parent, table.to_csv(index=False), "trials.csv")
    summary: dict[str, Any] = {"trials": len(table), "errors": len(results.errors), "best": None}
    try:
        best = results.get_best_result(metric=sopts.metric, mode=sopts.mode, scope="last")
    except RuntimeError:
        return summary
    config = {**best.config["base"], **{k: v for k, v in best.config.items() if k not in ("base", "sweep")}}
    summary.update(best=config, best_value=best.metrics.get(sopts.metric), best_run_id=best.metrics.get("mlflow_run_id"),
                   genotype=best.metrics.get("genotype"), genotype_json=best.metrics.get("genotype_json"))
    client.log_text(parent, json.dumps(config, indent=2), "best_config.json")
    if summary["genotype_json"]:
        client.log_text(parent, json.dumps(json.loads(summary["genotype_json"]), indent=2), "genotype.json")
    client.set_tag(parent, "best_run_id", summary["best_run_id"] or "")
    client.set_tag(parent, "best_genotype", summary["genotype"] or "")
    if summary["best_value"] is not None:
        client.log_metric(parent, f"best_{sopts.metric}", float(summary["best_value"]))
    if sopts.metric in table.columns and len(table):
        client.log_figure(parent, plot_history(table, sopts.metric, sopts.mode), "plots/optimization_history.png")
        client.log_figure(parent, plot_knobs(table, params, sopts.metric), "plots/knobs.png")
        importances = _importances(table, params, sopts.metric, sopts.mode)
        if importances:
            client.log_figure(parent, plot_importances(importances), "plots/param_importances.png")
            client.log_text(parent, json.dumps(importances, indent=2), "param_importances.json")
    plt.close("all")
    return summary
