"""What a finished sweep leaves on its parent MLflow run: best config and genotype, a table of all
trials, and plots (optimisation history, parameter importances, the metric against each knob)."""

from __future__ import annotations

import json
from typing import Any

import matplotlib.pyplot as plt
import optuna
from sddarts.platform.tuning.trial_table import ran_to_end
from sddarts.trainables.workers.fatal import KEY as FATAL_KEY

TABLE_COLUMNS = ["epoch", "objective", "proxy_acc", "derived_val_acc", "val_acc", "discretization_gap", "hessian_eig",
                 "sd_loss", "teachers", "mlflow_run_id", "proxy_run_id", "genotype", "genotype_json"]


def trials_table(results, params: list[str], epochs: int):
    """One row per trial: its status (``completed``: ran all ``epochs`` or stopped by DARTS-ES; ``stopped``: by the
    scheduler; ``error``), its sampled knobs and its last reported metrics."""
    import os

    import pandas as pd

    rows = []
    for result in results:
        metrics, config = result.metrics or {}, result.config or {}  # (none for a trial that never reported)
        status = ("error" if result.error or metrics.get(FATAL_KEY) else "completed" if ran_to_end(metrics, epochs)
                  else "stopped")
        rows.append({"trial_id": metrics.get("trial_id", os.path.basename(str(result.path))), "status": status,
                     **{p: config.get(p, config.get("base", {}).get(p)) for p in params},
                     **{c: metrics.get(c) for c in TABLE_COLUMNS}, "_config": config})
    return pd.DataFrame(rows)


def best_row(table, metric: str, mode: str):
    """The completed trial with the best ``metric``, or None."""
    done = table[(table["status"] == "completed") & table[metric].notna()]
    if done.empty:
        return None
    return done.loc[done[metric].astype(float).idxmax() if mode == "max" else done[metric].astype(float).idxmin()]


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
    values = [float(v) for v in table[metric]]
    best = (max if mode == "max" else min)
    running = [best(values[: i + 1]) for i in range(len(values))]
    ax.plot(range(1, len(values) + 1), values, "o", label="completed trial")
    ax.plot(range(1, len(values) + 1), running, "-", label="best so far")
    ax.xaxis.get_major_locator().set_params(integer=True)
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


SD_KNOBS = ("sd_weight", "temperature", "vote_count", "teacher_interval", "voting", "distill_on")


def is_baseline(row) -> bool:
    """Plain DARTS: no self-distillation, whatever its SD knobs read."""
    config = {**row["_config"].get("base", {}), **row["_config"]}
    return not (float(config.get("sd_weight", 0)) > 0 and int(config.get("vote_count", 0)) > 0)


def plot_knobs(table, params: list[str], metric: str):
    """The metric against each knob. Plain-DARTS trials have no SD knobs, so against those they
    are a dashed line, not points at values that did not apply."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    base = table.apply(is_baseline, axis=1) if len(table) else table.index == table.index
    fig, axes = plt.subplots(1, len(params), figsize=(3.6 * len(params), 3.2), squeeze=False)
    for ax, p in zip(axes[0], params):
        sd = table[~base] if p in SD_KNOBS else table
        ax.plot(sd[p], sd[metric].astype(float), "o", label="SD-DARTS" if p in SD_KNOBS else "trial")
        if p in SD_KNOBS and base.any():
            for i, value in enumerate(table[base][metric].astype(float)):
                ax.axhline(value, color="gray", ls="--", lw=1, label="plain DARTS" if i == 0 else None)
            ax.legend(fontsize=7)
        ax.set(xlabel=p, ylabel=metric)
        if p in ("sd_weight", "teacher_interval") and len(sd) and (sd[p].astype(float) > 0).all():
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())  # no overlapping minor labels
    fig.suptitle(f"{metric} against each knob (completed trials)")
    fig.tight_layout()
    return fig


def log_sweep_summary(client, parent: str, results, sopts, params: list[str], epochs: int) -> dict[str, Any]:
    """Logs the summary artifacts to the parent run; returns the best completed trial's config and
    genotype. Trials the scheduler stopped or that failed are counted apart, never ranked."""
    table = trials_table(results, params, epochs)
    shown = table.drop(columns=["_config", "genotype_json"])
    client.log_text(parent, shown.to_csv(index=False), "trials.csv")
    counts = table["status"].value_counts()
    ranked_by = "proxy_acc" if sopts.proxy_epochs else sopts.metric
    summary: dict[str, Any] = {"trials": len(table), "completed": int(counts.get("completed", 0)),
                               "stopped": int(counts.get("stopped", 0)), "errors": int(counts.get("error", 0)),
                               "best": None, "ranked_by": ranked_by, "rows": shown.to_dict("records")}
    for key in ("completed", "stopped", "errors"):
        client.log_metric(parent, f"trials_{key}", summary[key])
    best = best_row(table, "objective", sopts.objective_mode)
    if best is None:
        return summary
    config = {**best["_config"]["base"], **{k: v for k, v in best["_config"].items() if k not in ("base", "sweep")}}
    summary.update(best=config, best_value=float(best["objective"]), best_run_id=best["mlflow_run_id"],
                   genotype=best["genotype"], genotype_json=best["genotype_json"], best_trial_id=best["trial_id"])
    client.log_text(parent, json.dumps({"trial_id": best["trial_id"], ranked_by: float(best["objective"]), **config},
                                       indent=2), "best_config.json")
    if summary["genotype_json"]:
        client.log_text(parent, json.dumps(json.loads(summary["genotype_json"]), indent=2), "genotype.json")
    client.set_tag(parent, "best_run_id", summary["best_run_id"] or "")
    client.set_tag(parent, "best_trial_id", best["trial_id"])
    client.set_tag(parent, "best_genotype", summary["genotype"] or "")
    client.log_metric(parent, f"best_{ranked_by}", summary["best_value"])
    done = table[(table["status"] == "completed") & table["objective"].notna()]
    # for a completed trial the objective is its ``ranked_by`` column: plots show it by that name
    client.log_figure(parent, plot_history(done, ranked_by, sopts.objective_mode), "plots/optimization_history.png")
    client.log_figure(parent, plot_knobs(done, params, ranked_by), "plots/knobs.png")
    importances = _importances(done, params, ranked_by, sopts.objective_mode)
    if importances:
        client.log_figure(parent, plot_importances(importances), "plots/param_importances.png")
        client.log_text(parent, json.dumps(importances, indent=2), "param_importances.json")
    else:
        client.set_tag(parent, "param_importances", f"not computed: {len(done)} completed trials (3+ with distinct values needed)")
    plt.close("all")
    return summary
