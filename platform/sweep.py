"""``sddarts sweep``: a Ray Tune experiment whose every trial is one SD-DARTS search.

Each trial is a Tune function trainable that fits a ``TorchTrainer`` (the Ray Train V2 pattern),
with OptunaSearch (seeded TPE) proposing the SD knobs and ASHA stopping on the epoch axis. One
parent MLflow run per sweep; each trial's search run is its child.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from sddarts.platform import tracking
from sddarts.platform.search import RunOptions, run_search
from sddarts.platform.space import SpaceError
from sddarts.trainables.config import SearchConfig

TRIAL_DRIVER_CPU = 0.01  # a trial only drives its TorchTrainer; the workers reserve their own CPUs


@dataclass
class SweepOptions:
    trials: int = 8
    metric: str = "derived_val_acc"
    mode: str = "max"
    seed: int = 0
    baseline: bool = False
    asha: bool = True
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int = 0  # 0: as many as the cluster holds
    space: dict[str, Any] = field(default_factory=dict)


def baseline_point(dists: dict[str, optuna.distributions.BaseDistribution], base: SearchConfig) -> dict[str, Any]:
    """Plain DARTS as a point of the space: sd_weight=0 if the space admits it, else vote_count=0
    (widening vote_count's range to 0). Other knobs keep the base config's value."""
    point = {}
    for name, dist in dists.items():
        value = getattr(base, name)
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            point[name] = value if value in dist.choices else dist.choices[0]
        else:
            point[name] = min(max(value, dist.low), dist.high)
    sd = dists.get("sd_weight")
    if isinstance(sd, optuna.distributions.FloatDistribution) and sd.low == 0:
        point["sd_weight"] = 0.0
    elif isinstance(dists.get("vote_count"), optuna.distributions.IntDistribution):
        vc = dists["vote_count"]
        dists["vote_count"] = optuna.distributions.IntDistribution(0, vc.high, log=False, step=vc.step)
        point["vote_count"] = 0
    else:
        raise SpaceError("--baseline needs sd_weight (with low 0) or vote_count in the space")
    return point


def search_trial(config: dict[str, Any]) -> None:
    """One Tune trial: a full search whose MLflow run is a child of the sweep's run."""
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    sweep = config["sweep"]
    sampled = {k: v for k, v in config.items() if k not in ("base", "sweep")}
    cfg = SearchConfig.from_dict({**config["base"], **sampled})
    if not cfg.distills:  # one canonical plain-DARTS config
        cfg = cfg.replace(sd_weight=0.0, vote_count=0)
    ctx = ray.tune.get_context()
    opts = RunOptions(name=f"{sweep['name']}-{ctx.get_trial_id()}", tracking_uri=sweep["tracking_uri"],
                      experiment=sweep["experiment"], storage_path=sweep["storage_path"], resume=True)
    run_search(cfg, opts, parent_run_id=sweep["parent_run_id"], callbacks=[TuneReportCallback()],
               extra_tags={"kind": "search", "sweep": sweep["name"], "trial_id": ctx.get_trial_id(),
                           "trial_name": ctx.get_trial_name()}, own_status=False)


def make_callback(tracking_uri: str, experiment_id: str, sweep_name: str, parent_run_id: str, epochs: int):
    """Ends each trial's child run once Tune is done with the trial: FINISHED after the last epoch,
    KILLED with ``stopped_early=asha`` when the scheduler stopped it sooner, FAILED on error.
    (Tune kills a stopped trial, even at ``max_t``, before it could end its own run.)"""
    from ray.tune import Callback

    def run_of(trial) -> str | None:
        found = tracking.find_run(tracking_uri, experiment_id, f"{sweep_name}-{trial.trial_id}", parent_run_id)
        return found.info.run_id if found else None

    class TrialRuns(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            run_id = run_of(trial)
            done = int((trial.last_result or {}).get("epoch", 0))
            if not run_id:
                return
            if done >= epochs:
                tracking.end_run(tracking_uri, run_id, "FINISHED")
            else:
                tracking.end_run(tracking_uri, run_id, "KILLED", {
                    "stopped_early": "asha", "end_reason": f"stopped by the scheduler after epoch {done}"})

        def on_trial_error(self, iteration, trials, trial, **info):
            run_id = run_of(trial)
            if run_id:
                tracking.end_run(tracking_uri, run_id, "FAILED", {"error": str(trial.error_file or "trial error")})

    return TrialRuns()


def max_concurrent(cfg: SearchConfig, resources: dict[str, float], cap: int) -> int:
    """How many trials fit at once, so that no trial waits forever for its workers."""
    fits = [math.floor(resources.get("CPU", 0) / (cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU))]
    if cfg.gpus_per_worker:
        fits.append(math.floor(resources.get("GPU", 0) / (cfg.num_workers * cfg.gpus_per_worker)))
    n = max(1, min(fits))
    return min(n, cap) if cap else n


def build_tuner(base: SearchConfig, ropts: RunOptions, exp_id: str, parent: str, grid: dict[str, Any],
                params: list[str], tune_config) -> "ray.tune.Tuner":
    """The one place a Tuner of searches is built: each trial runs ``search_trial`` with the base
    config, plus what the searcher samples or the ``grid`` enumerates."""
    import ray.tune

    sweep_meta = {"name": ropts.name, "tracking_uri": ropts.tracking_uri, "experiment": ropts.experiment,
                  "storage_path": ropts.storage_path, "parent_run_id": parent}
    reporter = ray.tune.CLIReporter(parameter_columns=params, max_report_frequency=15, metric_columns=[
        "epoch", "derived_val_acc", "val_acc", "discretization_gap", "hessian_eig"])
    return ray.tune.Tuner(
        ray.tune.with_resources(search_trial, {"CPU": TRIAL_DRIVER_CPU}),
        param_space={"base": base.to_dict(), "sweep": sweep_meta, **grid},
        tune_config=tune_config,
        run_config=ray.tune.RunConfig(
            name=ropts.name, storage_path=ropts.storage_path, progress_reporter=reporter,
            failure_config=ray.tune.FailureConfig(max_failures=1),
            callbacks=[make_callback(ropts.tracking_uri, exp_id, ropts.name, parent, base.epochs)]),
    )


def restore_tuner(ropts: RunOptions) -> "ray.tune.Tuner":
    """Tune's restore of an interrupted experiment; finished trials are not rerun."""
    import ray.tune

    path = f"{ropts.storage_path.rstrip('/')}/{ropts.name}"
    return ray.tune.Tuner.restore(path, trainable=ray.tune.with_resources(search_trial, {"CPU": TRIAL_DRIVER_CPU}),
                                  resume_errored=True)


def fit_tuner(tuner, uri: str, parent: str, planned: int):
    """Fits the Tuner; the parent run ends KILLED on interrupt and FAILED on error. Tune answers
    Ctrl-C by saving its state and returning early, so fewer ended trials than ``planned`` is an
    interruption too."""
    try:
        results = tuner.fit()
        if results.num_terminated + results.num_errors < planned:
            raise KeyboardInterrupt()
        return results
    except (KeyboardInterrupt, SystemExit) as exc:
        tracking.end_run(uri, parent, "KILLED", {"end_reason": "interrupted"})
        raise KeyboardInterrupt() from exc
    except BaseException as exc:
        tracking.end_run(uri, parent, "FAILED", {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        raise


def run_sweep(base: SearchConfig, dists: dict, sopts: SweepOptions, ropts: RunOptions,
              resources: dict[str, float]) -> dict[str, Any]:
    """Runs (or with ``ropts.resume`` restores) a sweep; returns the best trial's summary."""
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from sddarts.platform.sweep_report import log_sweep_summary

    uri, name = ropts.tracking_uri, ropts.name
    exp_id = tracking.experiment_id(uri, ropts.experiment)
    points = [baseline_point(dists, base)] if sopts.baseline else None
    parent_tags = {"kind": "sweep", "space": base.space, "dataset": base.dataset, "seed": str(sopts.seed)}
    parent = tracking.open_run(uri, exp_id, name, parent_tags, resume=ropts.resume)
    client = tracking.client(uri)
    if not ropts.resume:
        settings = {"trials": sopts.trials, "metric": sopts.metric, "mode": sopts.mode, "searcher": "optuna-tpe",
                    "seed": sopts.seed, "scheduler": "asha" if sopts.asha else "fifo", "grace_period": sopts.grace_period,
                    "reduction_factor": sopts.reduction_factor, "baseline": sopts.baseline,
                    "workers_per_trial": base.num_workers, "epochs": base.epochs}
        for k, v in settings.items():
            client.log_param(parent, k, v)
        client.log_text(parent, json.dumps(sopts.space, indent=2), "space.json")
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")

    concurrency = max_concurrent(base, resources, sopts.max_concurrent)
    reporter_params = list(dists)
    started = time.time()
    if ropts.resume:
        tuner = restore_tuner(ropts)
    else:
        searcher = OptunaSearch(space=dists, metric=sopts.metric, mode=sopts.mode, points_to_evaluate=points,
                                sampler=optuna.samplers.TPESampler(seed=sopts.seed))
        scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=base.epochs, grace_period=sopts.grace_period,
                                   reduction_factor=sopts.reduction_factor) if sopts.asha else None)
        tuner = build_tuner(base, ropts, exp_id, parent, {}, reporter_params, ray.tune.TuneConfig(
            metric=sopts.metric, mode=sopts.mode, search_alg=searcher, scheduler=scheduler,
            num_samples=sopts.trials, max_concurrent_trials=concurrency))
    results = fit_tuner(tuner, uri, parent, sopts.trials)
    summary = log_sweep_summary(client, parent, results, sopts, list(dists))
    summary.update(parent_run_id=parent, experiment_id=exp_id, wall_s=time.time() - started, concurrency=concurrency)
    tracking.end_run(uri, parent, "FAILED" if summary.get("best") is None else "FINISHED")
    return summary
