"""``sddarts compare``: plain DARTS against variants (SD-DARTS settings, the field's fixes, or both)
and, with ``--random N``, N random genotypes per seed, all with the same seeds, settings and proxy
retrain, run as one small grid sweep under a parent run that holds the side-by-side curves, the
final figures per variant (mean and 95% interval over seeds), the paired tests against DARTS,
corrected together (Holm), and the NAS best-practice checklist (``checklist.md``)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from sddarts.platform.cluster import connect
from sddarts.platform.commands.flags import field_overrides
from sddarts.platform.options import TRIAL_DEFAULTS, CompareOptions, RunOptions
from sddarts.platform.preflight import check_inputs
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.heartbeat import heartbeat
from sddarts.platform.tuning.compare_stats import BASELINE, comparison_stats, format_stats, parent_metrics
from sddarts.platform.tuning.experiment import TRIAL_DRIVER_CPU, build_tuner, fit_tuner, max_concurrent
from sddarts.platform.tuning.proxy import proxy_settings
from sddarts.platform.tuning.trial import RANDOM, RANDOM_BEST, search_trial
from sddarts.platform.tuning.trial_table import ran_to_end
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig
from sddarts.search_spaces.errors import ConfigError

FINAL = ("hessian_eig", "discretization_gap", "param_free_share", "skip_count", "derived_val_acc", "val_acc")
DEFAULT_VARIANT = "SD-DARTS"  # without --variant: the command's config itself
_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")
# plain DARTS: no self-distillation and none of the field's fixes, whatever the base config turns on
PLAIN_DARTS = {"sd_weight": 0.0, "aux_skip": 0.0, "beta_decay": 0.0, "perturb": "none", "partial_channels": 1}


def parse_variants(specs: list[str], base: SearchConfig) -> dict[str, dict[str, Any]]:
    """``NAME='FLAGS'`` specs -> {name: config overrides}, each variant's config checked; none
    given: one variant, ``SD-DARTS``, the base config."""
    if not specs:
        return {DEFAULT_VARIANT: {}}
    variants: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, flags = spec.partition("=")
        name = name.strip()
        if not sep or not _VARIANT_NAME.fullmatch(name) or name in (BASELINE, RANDOM, RANDOM_BEST):
            raise ConfigError(f"variant must be NAME='FLAGS' with NAME 1-40 letters, digits, . _ - and not {BASELINE}, "
                              f"{RANDOM} or {RANDOM_BEST} (got {spec!r})")
        if name in variants:
            raise ConfigError(f"variant {name!r} is given twice")
        overrides = field_overrides(SearchConfig, flags, f"variant {name}")
        try:
            cfg = base.replace(**overrides).validate()
        except ConfigError as exc:
            raise ConfigError(f"variant {name}: {exc}") from None
        if not cfg.distills and not cfg.fixes:
            raise ConfigError(f"variant {name}: is plain DARTS (sd_weight 0 or vote_count 0, and no fix such as "
                              "--aux-skip on), which every comparison already runs")
        variants[name] = overrides
    return variants


@dataclass
class CompareResult:
    """A finished comparison: the paired statistics (one row per variant and metric, and as the
    console's table), the final figures of every completed trial, and how many completed."""

    name: str
    parent_run_id: str
    experiment_id: str
    stats: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    stats_text: str = ""
    trials: int = 0
    completed: int = 0
    wall_s: float = 0.0


def compare(preset: str, fields: dict[str, Any], options: CompareOptions, run: RunOptions) -> CompareResult:
    """Plain DARTS against ``options.variants`` (and ``options.random`` random genotypes per seed)
    over ``preset`` with ``fields``, for seeds 0..seeds-1: checked, then run as one grid sweep."""
    options.check()
    run, base = check_inputs(SearchConfig, SEARCH_PRESETS, preset, fields, run, "compare", TRIAL_DEFAULTS,
                             restore_config=False)
    if not options.variants and not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    variants = parse_variants(options.variants, base)
    proxy = proxy_settings(options, base)
    if options.random and not proxy["proxy_epochs"]:
        raise ConfigError(f"random genotypes need --proxy-epochs >= 1 to be measured (got random {options.random}, "
                          f"proxy_epochs {proxy['proxy_epochs']})")
    resources = connect(run.address or None, base, TRIAL_DRIVER_CPU)
    arms = ", ".join([*variants] + ([f"{options.random} random genotypes per seed"] if options.random else []))
    print(f"sddarts compare {run.name}: DARTS vs {arms} in space {base.space}, "
          f"seeds 0..{options.seeds - 1}, {base.epochs} epochs", flush=True)
    out = run_compare(base, options.seeds, run, resources, proxy, variants, options.random)
    return CompareResult(run.name, out["parent_run_id"], out["experiment_id"], out["stats"].to_dict("records"),
                         out["table"].to_dict("records"), format_stats(out["stats"]), out["trials"], out["completed"],
                         out["wall_s"])


def collect(results, epochs: int, metrics: tuple[str, ...]):
    """The completed trials' final figures (one row each) and per-epoch histories per variant."""
    import pandas as pd

    histories: dict[str, list] = {}
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        if result.error or frame is None or frame.empty or not ran_to_end(result.metrics, epochs):
            continue
        variant, final = result.config["variant"], result.metrics  # the last report: last epoch (and proxy_acc)
        row = {"variant": variant, "seed": result.config["seed"], **{k: final.get(k) for k in metrics},
               "es_returned_epoch": final.get("es_returned_epoch"), "mlflow_run_id": final.get("mlflow_run_id"),
               "wall_s": final.get("time_total_s")}
        rows.append(row)
        if variant == RANDOM:  # its mean is one row, its best another
            rows.append({**row, "variant": RANDOM_BEST, "proxy_acc": final.get("random_best_proxy_acc"), "wall_s": 0.0})
            continue
        histories.setdefault(variant, []).append(frame[frame["epoch"].notna()].drop_duplicates("epoch", keep="last"))
    if not rows:
        raise RuntimeError(f"none of the {len(results)} trials completed")
    return pd.DataFrame(rows).sort_values(["variant", "seed"]), histories


def run_compare(base: SearchConfig, seeds: int, ropts: RunOptions, resources: dict[str, float],
                proxy: dict[str, int] | None = None, variants: dict[str, dict[str, Any]] | None = None,
                random_draws: int = 0) -> dict[str, Any]:
    """Runs DARTS (no SD term, no fix) and every variant (``{name: overrides of base}``; default: the
    base config as ``SD-DARTS``) for seeds 0..seeds-1 (with ``proxy["proxy_epochs"]``, each
    genotype's proxy retrain too), and with ``random_draws`` N the random arm: N random genotypes per
    seed, retrained. Only trials that completed enter the table and the statistics; failed or
    stopped ones are counted."""
    import matplotlib.pyplot as plt
    import ray.tune

    from sddarts.platform.tuning.compare_plots import curves_figure, intervals_figure

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    proxy = proxy or {"proxy_epochs": 0}
    variants = variants or {DEFAULT_VARIANT: {}}
    from sddarts.trainables.data.nb201_bench import FIGURES

    metrics = FINAL + (("proxy_acc",) if proxy.get("proxy_epochs") else ()) + (tuple(FIGURES) if base.nb201_bench else ())
    arms = [BASELINE, *variants] + ([RANDOM] if random_draws else [])
    planned = len(arms) * seeds
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "compare", "space": base.space, "dataset": base.dataset})
    client = runs.client(uri)
    started = time.time()
    with runs.ending(uri, parent), heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        client.log_text(parent, json.dumps(variants, indent=2), "variants.json")
        client.log_param(parent, "seeds", seeds)
        client.log_param(parent, "variants", ",".join(variants))
        client.log_param(parent, "random_draws", random_draws)
        grid = {"variant": ray.tune.grid_search(arms), "seed": ray.tune.grid_search(list(range(seeds)))}
        sweep = {"metric": "derived_val_acc", "variants": {BASELINE: PLAIN_DARTS, **variants},
                 "random_draws": random_draws, **proxy}
        tuner = build_tuner(search_trial, base, ropts, exp_id, parent, sweep, grid, ["variant", "seed"], planned,
                            ray.tune.TuneConfig(max_concurrent_trials=max_concurrent(base, resources, 0)))
        results = fit_tuner(tuner, planned)
        table, histories = collect(results, base.epochs, metrics)
        stats = comparison_stats(table, metrics, list(variants) + ([RANDOM, RANDOM_BEST] if random_draws else []))
        client.log_text(parent, table.to_csv(index=False), "comparison.csv")
        client.log_text(parent, stats.to_csv(index=False), "comparison_stats.csv")
        client.log_text(parent, format_stats(stats), "comparison_stats.txt")
        client.log_text(parent, checklist(base, variants, seeds, proxy, random_draws, table), "checklist.md")
        client.set_tag(parent, "checklist.random_baseline", str(bool(random_draws)).lower())
        client.log_figure(parent, curves_figure(histories), "plots/comparison.png")
        client.log_figure(parent, intervals_figure(stats), "plots/comparison_intervals.png")
        plt.close("all")
        for key, value in parent_metrics(stats).items():
            client.log_metric(parent, key, value)
        completed = int((table["variant"] != RANDOM_BEST).sum())
        client.log_metric(parent, "trials_completed", completed)
        client.log_metric(parent, "trials_failed", len(results) - completed)
    runs.end_run(uri, parent, "FINISHED")
    return {"table": table, "stats": stats, "parent_run_id": parent, "experiment_id": exp_id,
            "wall_s": time.time() - started, "trials": len(results), "completed": int((table["variant"] != RANDOM_BEST).sum())}


def checklist(base: SearchConfig, variants: dict[str, dict[str, Any]], seeds: int, proxy: dict[str, int],
              random_draws: int, table) -> str:
    """The items of the NAS best-practice checklist (Lindauer & Hutter, JMLR 2020) this comparison
    satisfies, as ``checklist.md``."""
    wall = table.groupby("variant")["wall_s"].sum(min_count=1).to_dict() if "wall_s" in table else {}
    lines = ["# NAS best-practice checklist", "",
             f"- [x] same search space for every arm: `{base.space}`, dataset `{base.dataset}`",
             f"- [x] same training pipeline for every arm: one base config (`base_config.json`), {base.epochs} search "
             "epochs; each arm's overrides in `variants.json`; plain DARTS runs with no SD term and no fix",
             f"- [{'x' if proxy.get('proxy_epochs') else ' '}] same proxy retrain for every arm: "
             f"{proxy.get('proxy_epochs', 0)} epochs, C {proxy.get('proxy_C') or base.C}, "
             f"{proxy.get('proxy_layers') or base.layers} cells",
             f"- [x] seeds: 0..{seeds - 1}, paired across arms; Holm-corrected paired t-tests",
             f"- [{'x' if random_draws else ' '}] random-sampling baseline: {random_draws} uniform genotypes per seed",
             "- [x] hyperparameters of every arm: `base_config.json` and `variants.json`",
             "- [x] wall time of every arm (s, summed over its completed trials): "
             + ", ".join(f"{k} {v:.0f}" for k, v in sorted(wall.items()) if v == v and k != RANDOM_BEST)]
    return "\n".join(lines) + "\n"
