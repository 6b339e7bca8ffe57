"""``sddarts sweep``: a Ray Tune experiment whose every trial is one SD-DARTS search.

OptunaSearch (seeded TPE, after a quarter of the trials drawn at random) proposes the SD knobs and
learns from each completed trial's objective: its proxy retrain's held-out accuracy
(``--proxy-epochs``, the default on the digits presets) or its final ``--metric``. ASHA stops weak
trials at rungs of the search's own ``epoch`` on ``--prune-metric``; the best trial is
chosen among trials that ran all their epochs. One parent MLflow run per sweep; each trial's
search run is its child.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from sddarts.platform import runs
from sddarts.platform.flags import add_config_flags
from sddarts.platform.shell import command_name
from sddarts.platform.cluster import connect
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs
from sddarts.platform.space import DEFAULT_SPACE, baseline_point, load_space, space_of, to_distributions
from sddarts.platform.proxy import add_proxy_flags, proxy_settings
from sddarts.platform.trial import OBJECTIVE, TRIAL_DRIVER_CPU
from sddarts.platform.tuner import build_tuner, fit_tuner, max_concurrent, restore_tuner
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig

METRICS = {"derived_val_acc": "max", "val_acc": "max", "val_loss": "min", "discretization_gap": "min",
           "hessian_eig": "min", "alpha_entropy": "min",
           "bench_cifar10_valid": "max"}  # per-epoch metrics ASHA can prune on (of the benchmark's, the valid figure only)
# Presets whose derived_val_acc sits near chance (a one-hot network on 8x8 digits after a few
# epochs predicts one class): their sweeps rank by a proxy retrain of this many epochs by default.
PROXY_EPOCHS = {"digits-demo": 3, "collapse-demo": 3, "collapse-s3": 3}
PROXY_PRUNE_METRIC = "val_acc"  # what ASHA prunes on when the objective is a proxy retrain (it comes at the end)


def tpe_startup_trials(trials: int) -> int:
    """Random trials before TPE models the space: a quarter of the budget, at least 2 (Optuna's
    default of 10 would make a sweep of 8 trials pure random search)."""
    return max(2, trials // 4)


@dataclass
class SweepOptions:
    trials: int = 8
    metric: str = "derived_val_acc"
    mode: str = "max"
    prune_metric: str = "derived_val_acc"
    seed: int = 0
    baseline: bool = False
    asha: bool = True
    grace_period: int = 0  # 0: half the epochs, rounded up
    reduction_factor: int = 2
    max_concurrent: int = 0  # 0: as many as the cluster holds
    proxy_epochs: int = 0
    proxy_C: int = 0
    proxy_layers: int = 0
    space: dict[str, Any] = field(default_factory=dict)

    @property
    def objective_mode(self) -> str:
        return "max" if self.proxy_epochs else self.mode

    @property
    def startup_trials(self) -> int:
        return tpe_startup_trials(self.trials)


def add_parser(sub, help_preset: str = "") -> None:
    p = sub.add_parser("sweep", help="tune SD-DARTS' knobs: Ray Tune + Optuna (TPE) + ASHA, one search per trial")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, "digits-demo", {"num_workers": 1}, help_preset=help_preset)
    g = p.add_argument_group("sweep")
    g.add_argument("--trials", type=int, default=8, help="number of trials (searches; default 8)")
    g.add_argument("--workers-per-trial", dest="num_workers", type=int, default=argparse.SUPPRESS,
                   help="Train workers per trial (same as --num-workers; default 1 in a sweep)")
    g.add_argument("--space-file", default=None, help="YAML/JSON file of distributions per config field (default: sd_weight, "
                   "teacher_interval, vote_count, temperature)")
    g.add_argument("--baseline", action="store_true", help="evaluate plain DARTS first (points_to_evaluate)")
    g.add_argument("--no-asha", dest="asha", action="store_false", help="no early stopping: run every trial to the end (ASHA is on by default)")
    g.add_argument("--grace-period", type=int, default=0, help="ASHA: epochs before a trial can be stopped (0: half the epochs)")
    g.add_argument("--reduction-factor", type=int, default=2, help="ASHA: keep 1/rf of trials at each rung (default 2)")
    g.add_argument("--max-concurrent", type=int, default=0, help="cap on trials at once (0: what the cluster holds)")
    g.add_argument("--metric", default="derived_val_acc", choices=sorted(METRICS),
                   help="without a proxy retrain: what ranks the trials (final epoch) and what ASHA prunes on "
                        "(default derived_val_acc)")
    g.add_argument("--prune-metric", default=None, choices=sorted(METRICS),
                   help=f"per-epoch metric ASHA prunes on (default: --metric; with a proxy retrain {PROXY_PRUNE_METRIC})")
    add_proxy_flags(g, f"{', '.join(f'{k} {v}' for k, v in PROXY_EPOCHS.items())}, other presets 0")  # ranks by proxy_acc
    g.add_argument("--evaluate-best", action="store_true", help="retrain the best genotype from scratch at the end")
    add_run_flags(p, "restore the interrupted sweep NAME (Tune's restore); finished trials are not rerun")
    p.set_defaults(func=cmd_sweep)


def _check_int(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name} must be >= {low} (got {value})")


def sweep_options(args: argparse.Namespace, base: SearchConfig, space: dict[str, Any]) -> SweepOptions:
    """The sweep's settings from its flags, checked against the base config."""
    for name, low in (("trials", 1), ("grace_period", 0), ("reduction_factor", 2), ("max_concurrent", 0)):
        _check_int(name, getattr(args, name), low)
    proxy = proxy_settings(args, base, PROXY_EPOCHS.get(args.preset, 0))
    grace = args.grace_period or math.ceil(base.epochs / 2)
    if args.asha and base.epochs > 1 and grace >= base.epochs:
        raise ConfigError(f"grace_period must be < epochs ({base.epochs}) so that ASHA has a rung (got {grace})")
    prune = args.prune_metric or (PROXY_PRUNE_METRIC if proxy["proxy_epochs"] else args.metric)
    for flag, metric in (("metric", args.metric), ("prune_metric", prune)):
        if metric.startswith("bench_") and not base.nb201_bench:
            raise ConfigError(f"{flag} {metric} needs an nb201 search with a NAS-Bench-201 archive: pass --space nb201 "
                              "and --nb201-bench DIR (or keep NATS-tss-v1_0-3ffb9-simple under $TORCH_HOME)")
    return SweepOptions(trials=args.trials, metric=args.metric, mode=METRICS[args.metric], prune_metric=prune, seed=base.seed,
                        baseline=args.baseline, asha=args.asha and base.epochs > 1, grace_period=grace,
                        reduction_factor=args.reduction_factor, max_concurrent=args.max_concurrent,
                        **proxy, space=space)


def sweep_from_args(args: argparse.Namespace) -> tuple[RunOptions, dict[str, Any], dict[str, Any]]:
    """The sweep the flags describe, checked, then run: (its options, its summary, the space)."""
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "sweep", restore_config=False)
    dists = to_distributions(load_space(args.space_file) if args.space_file else DEFAULT_SPACE, base)
    points = None
    if args.baseline:
        point, dists = baseline_point(dists, base)
        points = [point]
    sopts = sweep_options(args, base, space_of(dists))
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    ranking = f"proxy_acc after {sopts.proxy_epochs} proxy epoch(s)" if sopts.proxy_epochs else f"final {sopts.metric}"
    print(f"sddarts sweep {ropts.name}: {sopts.trials} trials over {', '.join(dists)}; ranked by {ranking}; "
          f"TPE after {sopts.startup_trials} random trials; "
          f"ASHA {'prunes on ' + sopts.prune_metric + f' from epoch {sopts.grace_period}' if sopts.asha else 'off'}; "
          f"{base.num_workers} worker(s) x {base.cpus_per_worker:g} CPU per trial", flush=True)
    return ropts, run_sweep(base, dists, points, sopts, ropts, resources), dists


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        ropts, summary, dists = sweep_from_args(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: {command_name()} sweep --resume '{args.name}' "
              f"(same --storage-path and --tracking-uri)", file=sys.stderr)
        return 130
    print(f"\nsweep {ropts.name} finished in {summary['wall_s']:.0f}s: {summary['trials']} trials "
          f"({summary['completed']} completed, {summary['stopped']} stopped by ASHA, {summary['errors']} errors), "
          f"up to {summary['concurrency']} at once")
    if summary["best"] is None:
        print("no trial completed all its epochs; nothing to rank", file=sys.stderr)
        return 1
    knobs = {k: summary["best"][k] for k in dists}
    print(f"best {summary['ranked_by']} = {summary['best_value']:.4g} with {knobs}")
    print(f"best genotype: {summary['genotype']}")
    print(f"best search run: {summary['best_run_id']}")
    print(f"MLflow parent run id: {summary['parent_run_id']}")
    print(f"browse: {runs.run_url(ropts.tracking_uri, summary['experiment_id'], summary['parent_run_id'])}")
    if args.evaluate_best:
        from sddarts.platform.evaluate import evaluate_best_of_sweep

        evaluate_best_of_sweep(summary, ropts)
    return 0


def log_settings(client, parent: str, base: SearchConfig, sopts: SweepOptions) -> None:
    settings = {"trials": sopts.trials, "metric": sopts.metric, "mode": sopts.mode, "searcher": "optuna-tpe",
                "tpe_startup_trials": sopts.startup_trials, "prune_metric": sopts.prune_metric,
                "seed": sopts.seed, "scheduler": "asha" if sopts.asha else "fifo", "grace_period": sopts.grace_period,
                "reduction_factor": sopts.reduction_factor, "baseline": sopts.baseline, "proxy_epochs": sopts.proxy_epochs,
                "proxy_C": sopts.proxy_C, "proxy_layers": sopts.proxy_layers,
                "ranked_by": "proxy_acc" if sopts.proxy_epochs else sopts.metric,
                "workers_per_trial": base.num_workers, "epochs": base.epochs}
    for k, v in settings.items():
        client.log_param(parent, k, v)
    client.log_text(parent, json.dumps(sopts.space, indent=2), "space.json")
    client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")


def make_tuner(base: SearchConfig, dists: dict, points: list | None, sopts: SweepOptions, ropts: RunOptions,
               exp_id: str, parent: str, concurrency: int):
    """OptunaSearch learns from each completed trial's objective; ASHA prunes on ``--metric`` at
    rungs of ``epoch`` below the last epoch (``max_t = epochs - 1`` and ``stop_last_trials=False``),
    so a trial that reached its last epoch is never stopped before its proxy retrain."""
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler

    from sddarts.platform.searcher import FinalObjectiveSearch

    searcher = FinalObjectiveSearch(space=dists, metric=OBJECTIVE, mode=sopts.objective_mode, points_to_evaluate=points,
                            sampler=optuna.samplers.TPESampler(seed=sopts.seed, n_startup_trials=sopts.startup_trials))
    scheduler = (ASHAScheduler(time_attr="epoch", metric=sopts.prune_metric, mode=METRICS[sopts.prune_metric],
                               max_t=base.epochs - 1,
                               grace_period=sopts.grace_period, reduction_factor=sopts.reduction_factor,
                               stop_last_trials=False) if sopts.asha else None)
    sweep = {"metric": sopts.metric, "proxy_epochs": sopts.proxy_epochs, "proxy_C": sopts.proxy_C,
             "proxy_layers": sopts.proxy_layers}
    return build_tuner(base, ropts, exp_id, parent, sweep, {}, list(dists), sopts.trials, ray.tune.TuneConfig(
        search_alg=searcher, scheduler=scheduler, num_samples=sopts.trials, max_concurrent_trials=concurrency))


def run_sweep(base: SearchConfig, dists: dict, points: list | None, sopts: SweepOptions, ropts: RunOptions,
              resources: dict[str, float]) -> dict[str, Any]:
    """Runs (or with ``ropts.resume`` restores) a sweep; returns the best completed trial's summary.
    The parent run ends FINISHED, KILLED on interrupt, FAILED on error or when no trial completed."""
    from sddarts.platform.sweep_report import log_sweep_summary

    uri, name = ropts.tracking_uri, ropts.name
    exp_id = runs.experiment_id(uri, ropts.experiment)
    parent_tags = {"kind": "sweep", "space": base.space, "dataset": base.dataset, "seed": str(sopts.seed)}
    parent = runs.open_run(uri, exp_id, name, parent_tags, resume=ropts.resume)
    concurrency = max_concurrent(base, resources, sopts.max_concurrent)
    started = time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client = runs.client(uri)
        if ropts.resume:
            tuner = restore_tuner(ropts)
        else:
            log_settings(client, parent, base, sopts)
            tuner = make_tuner(base, dists, points, sopts, ropts, exp_id, parent, concurrency)
        results = fit_tuner(tuner, sopts.trials)
        summary = log_sweep_summary(client, parent, results, sopts, list(dists), base.epochs)
    summary.update(parent_run_id=parent, experiment_id=exp_id, wall_s=time.time() - started, concurrency=concurrency)
    runs.end_run(uri, parent, "FAILED" if summary["best"] is None else "FINISHED",
                 {"error": "no trial completed all its epochs"} if summary["best"] is None else None)
    return summary
