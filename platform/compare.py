"""``sddarts compare``: plain DARTS against variants (SD-DARTS settings, the field's fixes, or both)
and, with ``--random N``, N random genotypes per seed, all with the same seeds, settings and proxy
retrain, run as one small grid sweep under a parent run that holds the side-by-side curves, the
final figures per variant (mean and 95% interval over seeds), the paired tests against DARTS,
corrected together (Holm), and the NAS best-practice checklist (``checklist.md``)."""

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
from sddarts.platform.random_arm import RANDOM, RANDOM_BEST
from sddarts.platform.trial import TRIAL_DRIVER_CPU
from sddarts.platform.trial_table import ran_to_end
from sddarts.platform.tuner import build_tuner, fit_tuner, max_concurrent
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig

FINAL = ("hessian_eig", "discretization_gap", "param_free_share", "skip_count", "derived_val_acc", "val_acc")
DEFAULT_VARIANT = "SD-DARTS"  # without --variant: the command's config itself
_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")
# plain DARTS: no self-distillation and none of the field's fixes, whatever the base config turns on
PLAIN_DARTS = {"sd_weight": 0.0, "aux_skip": 0.0, "beta_decay": 0.0, "perturb": "none", "partial_channels": 1}


def add_parser(sub, help_preset: str = "") -> None:
    c = sub.add_parser("compare", help="plain DARTS vs SD-DARTS variants, the field's fixes and random genotypes with the "
                       "same seeds and settings (a grid sweep)")
    add_config_flags(c, SearchConfig, SEARCH_PRESETS, "digits-demo", {"num_workers": 1}, help_preset=help_preset)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 for each variant (default 5)")
    c.add_argument("--variant", action="append", default=[], metavar="NAME='FLAGS'",
                   help="an SD-DARTS variant: config flags over the command's config, e.g. "
                        "w-only='--distill-on weights' or dminus='--sd-weight 0 --aux-skip 1' (repeatable; default: "
                        "one variant, SD-DARTS, the config itself)")
    c.add_argument("--random", type=int, default=0, metavar="N",
                   help="add the random-sampling arm: N genotypes drawn uniformly per seed, each retrained with the "
                        "proxy recipe; rows random (their mean) and random-best (their best) (needs --proxy-epochs)")
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


def compare_from_args(args: argparse.Namespace) -> tuple[RunOptions, dict[str, Any]]:
    """The comparison the flags describe, checked, then run."""
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "compare", restore_config=False)
    if args.seeds < 1:
        raise ConfigError(f"seeds must be >= 1 (got {args.seeds})")
    if not args.variant and not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    variants = parse_variants(args.variant, base)
    proxy = proxy_settings(args, base)
    if args.random < 0 or (args.random and not proxy["proxy_epochs"]):
        raise ConfigError(f"random must be >= 0, and random genotypes need --proxy-epochs >= 1 to be measured "
                          f"(got random {args.random}, proxy_epochs {proxy['proxy_epochs']})")
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    arms = ", ".join([*variants] + ([f"{args.random} random genotypes per seed"] if args.random else []))
    print(f"sddarts compare {ropts.name}: DARTS vs {arms} in space {base.space}, "
          f"seeds 0..{args.seeds - 1}, {base.epochs} epochs", flush=True)
    return ropts, run_compare(base, args.seeds, ropts, resources, proxy, variants, args.random)


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

    from sddarts.platform.compare_plots import curves_figure, intervals_figure

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    proxy = proxy or {"proxy_epochs": 0}
    variants = variants or {DEFAULT_VARIANT: {}}
    from sddarts.trainables.nb201_bench import FIGURES

    metrics = FINAL + (("proxy_acc",) if proxy.get("proxy_epochs") else ()) + (tuple(FIGURES) if base.nb201_bench else ())
    arms = [BASELINE, *variants] + ([RANDOM] if random_draws else [])
    planned = len(arms) * seeds
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "compare", "space": base.space, "dataset": base.dataset})
    client = runs.client(uri)
    started = time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        client.log_text(parent, json.dumps(variants, indent=2), "variants.json")
        client.log_param(parent, "seeds", seeds)
        client.log_param(parent, "variants", ",".join(variants))
        client.log_param(parent, "random_draws", random_draws)
        grid = {"variant": ray.tune.grid_search(arms), "seed": ray.tune.grid_search(list(range(seeds)))}
        sweep = {"metric": "derived_val_acc", "variants": {BASELINE: PLAIN_DARTS, **variants},
                 "random_draws": random_draws, **proxy}
        tuner = build_tuner(base, ropts, exp_id, parent, sweep, grid, ["variant", "seed"], planned,
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
