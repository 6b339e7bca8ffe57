"""``sddarts compare``: plain DARTS against one or more SD-DARTS variants with the same seeds and
settings, run as one small grid sweep under a parent run that holds the side-by-side curves, the
final figures per variant (mean and 95% interval over seeds) and the paired tests against DARTS,
corrected together (Holm)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from sddarts.platform import runs
from sddarts.platform.cluster import connect
from sddarts.platform.compare_stats import BASELINE, comparison_stats, format_stats, parent_metrics
from sddarts.platform.flags import add_config_flags, field_overrides
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs
from sddarts.platform.proxy import add_proxy_flags, proxy_settings
from sddarts.platform.trial import TRIAL_DRIVER_CPU
from sddarts.platform.trial_table import ran_to_end
from sddarts.platform.tuner import build_tuner, fit_tuner, max_concurrent
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig

FINAL = ("hessian_eig", "discretization_gap", "param_free_share", "skip_count", "derived_val_acc", "val_acc")
DEFAULT_VARIANT = "SD-DARTS"  # without --variant: the command's config itself
_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")


def add_parser(sub, help_preset: str = "") -> None:
    c = sub.add_parser("compare", help="plain DARTS vs SD-DARTS variants with the same seeds and settings (a grid sweep)")
    add_config_flags(c, SearchConfig, SEARCH_PRESETS, "digits-demo", {"num_workers": 1}, help_preset=help_preset)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 for each variant (default 5)")
    c.add_argument("--variant", action="append", default=[], metavar="NAME='FLAGS'",
                   help="an SD-DARTS variant: config flags over the command's config, e.g. "
                        "w-only='--distill-on weights' (repeatable; default: one variant, SD-DARTS, the config itself)")
    add_proxy_flags(c.add_argument_group("proxy retrain (adds proxy_acc to the comparison)"))
    add_run_flags(c, None)
    c.set_defaults(func=cmd_compare)


def parse_variants(specs: list[str], base: SearchConfig) -> dict[str, dict[str, Any]]:
    """``NAME='FLAGS'`` specs -> {name: config overrides}, each variant's config checked; none
    given: one variant, ``SD-DARTS``, the base config."""
    if not specs:
        return {DEFAULT_VARIANT: {}}
    variants: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, flags = spec.partition("=")
        name = name.strip()
        if not sep or not _VARIANT_NAME.fullmatch(name) or name == BASELINE:
            raise ConfigError(f"variant must be NAME='FLAGS' with NAME 1-40 letters, digits, . _ - and not {BASELINE} "
                              f"(got {spec!r})")
        if name in variants:
            raise ConfigError(f"variant {name!r} is given twice")
        overrides = field_overrides(SearchConfig, flags, f"variant {name}")
        try:
            cfg = base.replace(**overrides).validate()
        except ConfigError as exc:
            raise ConfigError(f"variant {name}: {exc}") from None
        if not cfg.distills:
            raise ConfigError(f"variant {name}: is plain DARTS (sd_weight 0 or vote_count 0), which every comparison "
                              "already runs")
        variants[name] = overrides
    return variants


def compare_from_args(args: argparse.Namespace) -> tuple[RunOptions, dict[str, Any]]:
    """The comparison the flags describe, checked, then run."""
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "compare", restore_config=False)
    if args.seeds < 1:
        raise ConfigError(f"seeds must be >= 1 (got {args.seeds})")
    if not args.variant and not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    variants = parse_variants(args.variant, base)
    proxy = proxy_settings(args, base)
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts compare {ropts.name}: DARTS vs {', '.join(variants)} in space {base.space}, "
          f"seeds 0..{args.seeds - 1}, {base.epochs} epochs", flush=True)
    return ropts, run_compare(base, args.seeds, ropts, resources, proxy, variants)


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        ropts, out = compare_from_args(args)
    except KeyboardInterrupt:
        print("\ninterrupted; the MLflow parent run is marked KILLED", file=sys.stderr)
        return 130
    print(f"\ncompare {ropts.name} finished in {out['wall_s']:.0f}s ({out['completed']} of {out['trials']} trials "
          f"completed; failed or stopped ones are left out). Final epoch, mean [95% CI] over seeds, the paired "
          f"t-test of each variant - DARTS over the seeds both completed, and its p corrected across all "
          f"{len(out['stats'])} tests (Holm):")
    print(format_stats(out["stats"]))
    print(f"MLflow parent run id: {out['parent_run_id']}")
    print(f"browse: {runs.run_url(ropts.tracking_uri, out['experiment_id'], out['parent_run_id'])}")
    return 0


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
        histories.setdefault(variant, []).append(frame[frame["epoch"].notna()].drop_duplicates("epoch", keep="last"))
        rows.append({"variant": variant, "seed": result.config["seed"], **{k: final.get(k) for k in metrics},
                     "es_returned_epoch": final.get("es_returned_epoch"), "mlflow_run_id": final.get("mlflow_run_id")})
    if not rows:
        raise RuntimeError(f"none of the {len(results)} trials completed")
    return pd.DataFrame(rows).sort_values(["variant", "seed"]), histories


def run_compare(base: SearchConfig, seeds: int, ropts: RunOptions, resources: dict[str, float],
                proxy: dict[str, int] | None = None, variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Runs DARTS (sd_weight=0) and every variant (``{name: overrides of base}``; default: the base
    config as ``SD-DARTS``) for seeds 0..seeds-1 (with ``proxy["proxy_epochs"]``, each genotype's
    proxy retrain too). Only trials that completed enter the table and the statistics; failed or
    stopped ones are counted."""
    import matplotlib.pyplot as plt
    import ray.tune

    from sddarts.platform.compare_plots import curves_figure, intervals_figure

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    proxy = proxy or {"proxy_epochs": 0}
    variants = variants or {DEFAULT_VARIANT: {}}
    from sddarts.trainables.nb201_bench import FIGURES

    metrics = FINAL + (("proxy_acc",) if proxy.get("proxy_epochs") else ()) + (tuple(FIGURES) if base.nb201_bench else ())
    planned = (1 + len(variants)) * seeds
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "compare", "space": base.space, "dataset": base.dataset})
    client = runs.client(uri)
    started = time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        client.log_text(parent, json.dumps(variants, indent=2), "variants.json")
        client.log_param(parent, "seeds", seeds)
        client.log_param(parent, "variants", ",".join(variants))
        grid = {"variant": ray.tune.grid_search([BASELINE, *variants]), "seed": ray.tune.grid_search(list(range(seeds)))}
        sweep = {"metric": "derived_val_acc", "variants": {BASELINE: {"sd_weight": 0.0}, **variants}, **proxy}
        tuner = build_tuner(base, ropts, exp_id, parent, sweep, grid, ["variant", "seed"], planned,
                            ray.tune.TuneConfig(max_concurrent_trials=max_concurrent(base, resources, 0)))
        results = fit_tuner(tuner, planned)
        table, histories = collect(results, base.epochs, metrics)
        stats = comparison_stats(table, metrics, list(variants))
        client.log_text(parent, table.to_csv(index=False), "comparison.csv")
        client.log_text(parent, stats.to_csv(index=False), "comparison_stats.csv")
        client.log_text(parent, format_stats(stats), "comparison_stats.txt")
        client.log_figure(parent, curves_figure(histories), "plots/comparison.png")
        client.log_figure(parent, intervals_figure(stats), "plots/comparison_intervals.png")
        plt.close("all")
        for key, value in parent_metrics(stats).items():
            client.log_metric(parent, key, value)
        client.log_metric(parent, "trials_completed", len(table))
        client.log_metric(parent, "trials_failed", len(results) - len(table))
    runs.end_run(uri, parent, "FINISHED")
    return {"table": table, "stats": stats, "parent_run_id": parent, "experiment_id": exp_id,
            "wall_s": time.time() - started, "trials": len(results), "completed": len(table)}
