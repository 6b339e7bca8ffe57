"""``sddarts sweep``: a Ray Tune experiment whose every trial is one SD-DARTS search.

OptunaSearch (seeded TPE, after a quarter of the trials drawn at random) proposes the SD knobs and
learns from each completed trial's objective: its proxy retrain's held-out accuracy
(``--proxy-epochs``, the default on the digits presets) or its final ``--metric``. ASHA stops weak
trials at rungs of the search's own ``epoch`` on ``--prune-metric``; the best trial is
chosen among trials that ran all their epochs. One parent MLflow run per sweep; each trial's
search run is its child.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from sddarts.platform.cluster import connect
from sddarts.platform.jobs import EvalResult, run_evaluation
from sddarts.platform.options import METRICS, TRIAL_DEFAULTS, RunOptions, SweepOptions
from sddarts.platform.preflight import check_inputs
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.genotype_source import resolve_genotype
from sddarts.platform.tracking.heartbeat import heartbeat
from sddarts.platform.tracking.registry import set_alias
from sddarts.platform.tuning.experiment import TRIAL_DRIVER_CPU, build_tuner, fit_tuner, max_concurrent, restore_tuner
from sddarts.platform.tuning.proxy import proxy_settings
from sddarts.platform.tuning.sweep_report import log_sweep_summary
from sddarts.platform.tuning.sweep_space import DEFAULT_SPACE, baseline_point, load_space, space_of, to_distributions
from sddarts.platform.tuning.trial import OBJECTIVE, search_trial
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import EVAL_PRESETS, SEARCH_PRESETS, EvalConfig, SearchConfig
from sddarts.trainables.presets import eval_preset

# Presets whose derived_val_acc sits near chance (a one-hot network on 8x8 digits after a few
# epochs predicts one class): their sweeps rank by a proxy retrain of this many epochs by default.
PROXY_EPOCHS = {"digits-demo": 3, "collapse-demo": 3, "collapse-s3": 3}
PROXY_PRUNE_METRIC = "val_acc"  # what ASHA prunes on when the objective is a proxy retrain (it comes at the end)
CHAMPION = "champion"  # the registry alias of the best model a sweep evaluates (models:/NAME@champion)


def tpe_startup_trials(trials: int) -> int:
    """Random trials before TPE models the space: a quarter of the budget, at least 2 (Optuna's
    default of 10 would make a sweep of 8 trials pure random search)."""
    return max(2, trials // 4)


@dataclass
class SweepPlan:
    """A sweep's settings, resolved against its base config: what ranks, what prunes, and when."""

    trials: int
    metric: str
    mode: str
    prune_metric: str
    seed: int
    baseline: bool
    asha: bool
    grace_period: int
    reduction_factor: int
    max_concurrent: int
    proxy_epochs: int
    proxy_C: int
    proxy_layers: int
    space: dict[str, Any] = field(default_factory=dict)

    @property
    def objective_mode(self) -> str:
        return "max" if self.proxy_epochs else self.mode

    @property
    def startup_trials(self) -> int:
        return tpe_startup_trials(self.trials)


@dataclass
class SweepResult:
    """A finished sweep: one row per trial (its knobs, status, figures, MLflow run id), the best
    completed trial (``best``: its config; None when no trial completed) and, with
    ``evaluate_best``, its evaluation (``evaluated``; its model carries the alias ``champion``)."""

    name: str
    parent_run_id: str
    experiment_id: str
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_run_id: str | None
    best_value: float | None
    ranked_by: str
    genotype: str | None
    knobs: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # trials, completed, stopped, errors, concurrency
    wall_s: float = 0.0
    evaluated: Any = None


def sweep_plan(options: SweepOptions, base: SearchConfig, space: dict[str, Any], preset: str) -> SweepPlan:
    """The sweep's settings from its options, checked against the base config."""
    options.check()
    proxy = proxy_settings(options, base, PROXY_EPOCHS.get(preset, 0))
    grace = options.grace_period or math.ceil(base.epochs / 2)
    if options.asha and base.epochs > 1 and grace >= base.epochs:
        raise ConfigError(f"grace_period must be < epochs ({base.epochs}) so that ASHA has a rung (got {grace})")
    prune = options.prune_metric or (PROXY_PRUNE_METRIC if proxy["proxy_epochs"] else options.metric)
    for name, metric in (("metric", options.metric), ("prune_metric", prune)):
        if metric.startswith("bench_") and not base.nb201_bench:
            raise ConfigError(f"{name} {metric} needs an nb201 search with a NAS-Bench-201 archive: pass --space nb201 "
                              "and --nb201-bench DIR (or keep NATS-tss-v1_0-3ffb9-simple under $TORCH_HOME)")
    return SweepPlan(trials=options.trials, metric=options.metric, mode=METRICS[options.metric], prune_metric=prune,
                     seed=base.seed, baseline=options.baseline, asha=options.asha and base.epochs > 1,
                     grace_period=grace, reduction_factor=options.reduction_factor,
                     max_concurrent=options.max_concurrent, **proxy, space=space)


def sweep(preset: str, fields: dict[str, Any], options: SweepOptions, run: RunOptions) -> SweepResult:
    """A sweep of searches over ``preset`` with ``fields`` (one worker per trial unless given),
    checked, then run (or with ``run.resume`` restored); with ``options.evaluate_best`` the best
    genotype is then retrained, registered and given the alias ``champion``."""
    options.check()
    run, base = check_inputs(SearchConfig, SEARCH_PRESETS, preset, fields, run, "sweep", TRIAL_DEFAULTS,
                             restore_config=False)
    dists = to_distributions(load_space(options.space_file) if options.space_file else DEFAULT_SPACE, base)
    points = None
    if options.baseline:
        point, dists = baseline_point(dists, base)
        points = [point]
    plan = sweep_plan(options, base, space_of(dists), preset)
    resources = connect(run.address or None, base, TRIAL_DRIVER_CPU)
    ranking = f"proxy_acc after {plan.proxy_epochs} proxy epoch(s)" if plan.proxy_epochs else f"final {plan.metric}"
    print(f"sddarts sweep {run.name}: {plan.trials} trials over {', '.join(dists)}; ranked by {ranking}; "
          f"TPE after {plan.startup_trials} random trials; "
          f"ASHA {'prunes on ' + plan.prune_metric + f' from epoch {plan.grace_period}' if plan.asha else 'off'}; "
          f"{base.num_workers} worker(s) x {base.cpus_per_worker:g} CPU per trial", flush=True)
    s = run_sweep(base, dists, points, plan, run, resources)
    result = SweepResult(run.name, s["parent_run_id"], s["experiment_id"], s["rows"], s["best"], s.get("best_run_id"),
                         s.get("best_value"), s["ranked_by"], s.get("genotype"), list(dists),
                         {k: s[k] for k in ("trials", "completed", "stopped", "errors", "concurrency")}, s["wall_s"])
    if options.evaluate_best and result.best is not None:
        result.evaluated = evaluate_best(result, run)
    return result


def evaluate_best(result: SweepResult, run: RunOptions):
    """Retrains the sweep's best genotype with the evaluation preset of its dataset, attaches the
    result to the sweep's parent run and points the registry alias ``champion`` at its model."""
    best = result.best
    preset = eval_preset(best["space"], best["dataset"])
    fields = {k: best[k] for k in ("dataset", "data_dir", "image_size", "data_mean", "data_std", "num_workers",
                                   "cpus_per_worker", "gpus_per_worker", "seed", "steps_per_epoch")}
    # the search's data (an image folder's size and statistics too), resources and step budget
    cfg = EvalConfig.from_dict({**EVAL_PRESETS[preset], **fields}).validate()
    eval_run = dataclasses.replace(run, name=f"{run.name}-best-eval", resume=False)
    source = resolve_genotype(result.best_run_id, run.tracking_uri, run.experiment)
    print(f"sddarts evaluate {eval_run.name}: the best genotype {source.genotype.short()} on {cfg.dataset}, "
          f"{cfg.epochs} epochs", flush=True)
    metrics = run_evaluation(cfg, source, eval_run)
    out = EvalResult(eval_run.name, metrics["run_id"], metrics["model_uri"], metrics)
    client = runs.client(run.tracking_uri)
    parent = result.parent_run_id
    client.log_metric(parent, "best_test_acc", out.metrics["test_acc"])
    client.log_metric(parent, "best_params_m", out.metrics["params_m"])
    client.set_tag(parent, "best_eval_run_id", out.run_id)
    client.set_tag(parent, "best_model", out.model_uri)
    champion = set_alias(run.tracking_uri, out.metrics["model"], out.metrics["version"], CHAMPION)
    client.set_tag(parent, "champion_model", champion)
    return out


def log_settings(client, parent: str, base: SearchConfig, sopts: SweepPlan) -> None:
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


def make_tuner(base: SearchConfig, dists: dict, points: list | None, sopts: SweepPlan, ropts: RunOptions,
               exp_id: str, parent: str, concurrency: int):
    """OptunaSearch learns from each completed trial's objective; ASHA prunes on ``--metric`` at
    rungs of ``epoch`` below the last epoch (``max_t = epochs - 1`` and ``stop_last_trials=False``),
    so a trial that reached its last epoch is never stopped before its proxy retrain."""
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler

    from sddarts.platform.tuning.final_objective_search import FinalObjectiveSearch

    searcher = FinalObjectiveSearch(space=dists, metric=OBJECTIVE, mode=sopts.objective_mode, points_to_evaluate=points,
                            sampler=optuna.samplers.TPESampler(seed=sopts.seed, n_startup_trials=sopts.startup_trials))
    scheduler = (ASHAScheduler(time_attr="epoch", metric=sopts.prune_metric, mode=METRICS[sopts.prune_metric],
                               max_t=base.epochs - 1,
                               grace_period=sopts.grace_period, reduction_factor=sopts.reduction_factor,
                               stop_last_trials=False) if sopts.asha else None)
    sweep = {"metric": sopts.metric, "proxy_epochs": sopts.proxy_epochs, "proxy_C": sopts.proxy_C,
             "proxy_layers": sopts.proxy_layers}
    return build_tuner(search_trial, base, ropts, exp_id, parent, sweep, {}, list(dists), sopts.trials, ray.tune.TuneConfig(
        search_alg=searcher, scheduler=scheduler, num_samples=sopts.trials, max_concurrent_trials=concurrency))


def run_sweep(base: SearchConfig, dists: dict, points: list | None, sopts: SweepPlan, ropts: RunOptions,
              resources: dict[str, float]) -> dict[str, Any]:
    """Runs (or with ``ropts.resume`` restores) a sweep; returns the best completed trial's summary.
    The parent run ends FINISHED, KILLED on interrupt, FAILED on error or when no trial completed."""

    uri, name = ropts.tracking_uri, ropts.name
    exp_id = runs.experiment_id(uri, ropts.experiment)
    parent_tags = {"kind": "sweep", "space": base.space, "dataset": base.dataset, "seed": str(sopts.seed)}
    parent = runs.open_run(uri, exp_id, name, parent_tags, resume=ropts.resume)
    concurrency = max_concurrent(base, resources, sopts.max_concurrent)
    started = time.time()
    with runs.ending(uri, parent), heartbeat(uri, parent):
        client = runs.client(uri)
        if ropts.resume:
            tuner = restore_tuner(search_trial, ropts)
        else:
            log_settings(client, parent, base, sopts)
            tuner = make_tuner(base, dists, points, sopts, ropts, exp_id, parent, concurrency)
        results = fit_tuner(tuner, sopts.trials)
        summary = log_sweep_summary(client, parent, results, sopts, list(dists), base.epochs)
    summary.update(parent_run_id=parent, experiment_id=exp_id, wall_s=time.time() - started, concurrency=concurrency)
    runs.end_run(uri, parent, "FAILED" if summary["best"] is None else "FINISHED",
                 {"error": "no trial completed all its epochs"} if summary["best"] is None else None)
    return summary
