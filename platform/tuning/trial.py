"""One trial of a Ray Tune experiment of searches (``sddarts sweep``, ``compare`` and ``power``).

A Tune function trainable that fits the search's ``TorchTrainer`` (the Ray Train V2 pattern) and,
when the sweep asks for it, a proxy retrain of the derived genotype. Its MLflow run is the
search's own run, a child of the experiment's parent run. A trial of the random arm (``compare
--random``) or of ``power`` searches nothing: it retrains genotypes drawn uniformly from the space
(``search_spaces.random_arch``) with the same proxy recipe, under one run whose children are the
retrains.
"""

from __future__ import annotations

import json
from typing import Any

from sddarts.platform.jobs import run_evaluation, run_search
from sddarts.platform.options import RunOptions
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.registry import GenotypeSource
from sddarts.platform.tuning.proxy import proxy_config
from sddarts.search_spaces.errors import SddartsError
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.workers.fatal import KEY as FATAL_KEY

OBJECTIVE = "objective"  # reported once, by trials that completed: what the searcher learns from
RANDOM = "random"  # the random arm's variant name: proxy_acc is the mean of the seed's draws
RANDOM_BEST = "random-best"  # the best of the seed's draws (what a random search of N would keep)


def trial_run(sweep: dict[str, Any], name: str) -> RunOptions:
    """The options of a run inside a trial: the experiment's store, storage and system-metrics
    settings; resumable (Tune retries a trial from its checkpoint)."""
    keep = ("tracking_uri", "experiment", "storage_path", "system_metrics", "system_metrics_interval",
            "progress_interval")
    return RunOptions(name=name, resume=True, **{k: sweep[k] for k in keep if k in sweep})


def epoch_reports():
    """Forwards each epoch's report to Tune with ``objective: None``: Tune wants the searcher's
    metric in every result, and a trial that ends without a final objective (stopped by the
    scheduler) then reaches Optuna as pruned rather than as a complete trial."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class EpochReports(TuneReportCallback):
        def after_report(self, run_context, metrics, checkpoint):
            super().after_report(run_context, [{OBJECTIVE: None, **metrics[0]}, *metrics[1:]], checkpoint)

    return EpochReports()


def search_trial(config: dict[str, Any]) -> None:
    """One Tune trial: a full search whose MLflow run is a child of the sweep's run, then (with
    ``proxy_epochs``) the proxy retrain of its genotype, a child of the search's run."""
    import ray.tune

    sweep = config["sweep"]
    sampled = {k: v for k, v in config.items() if k not in ("base", "sweep", "variant", "retrains")}
    variant = config.get("variant")  # a comparison's grid names a variant: overrides of the base config
    cfg = SearchConfig.from_dict({**config["base"], **sweep.get("variants", {}).get(variant, {}), **sampled})
    if not cfg.distills:  # one canonical plain-DARTS config
        cfg = cfg.replace(sd_weight=0.0, vote_count=0)
    cfg = cfg.replace(max_failures=0)  # Tune restarts the trial instead (see the table in platform/compat)
    ctx = ray.tune.get_context()
    if variant == RANDOM or "retrains" in config:  # no search: random genotypes, retrained with the proxy recipe
        retrains = config.get("retrains") or [(cfg.seed, d, cfg.seed) for d in range(sweep["random_draws"])]
        final = retrain_random(cfg, sweep, [tuple(r) for r in retrains], f"{sweep['name']}-{ctx.get_trial_id()}",
                               {"sweep": sweep["name"], "trial_id": ctx.get_trial_id(), "variant": RANDOM})
        ray.tune.report({**final, OBJECTIVE: final["proxy_acc"]})
        return
    opts = trial_run(sweep, f"{sweep['name']}-{ctx.get_trial_id()}")
    try:
        out = run_search(cfg, opts, parent_run_id=sweep["parent_run_id"], callbacks=[epoch_reports()],
                         extra_tags={"kind": "search", "sweep": sweep["name"], "trial_id": ctx.get_trial_id(),
                                     "trial_name": ctx.get_trial_name(), **({"variant": variant} if variant else {})},
                         own_status=False)
    except SddartsError as exc:  # it would fail again: end the trial (no Tune retry); the callback fails its run
        ray.tune.report({FATAL_KEY: f"{type(exc).__name__}: {exc}", OBJECTIVE: None})
        return
    final = dict(out.metrics)
    final[OBJECTIVE] = final.get(sweep["metric"])
    if sweep.get("proxy_epochs"):
        proxy_cfg = proxy_config(cfg, sweep["proxy_epochs"], sweep.get("proxy_C", 0), sweep.get("proxy_layers", 0))
        proxy_opts = trial_run(sweep, f"{opts.name}-proxy")
        proxy = run_evaluation(proxy_cfg, GenotypeSource(out.genotype, out.run_id, f"proxy of {opts.name}"),
                               proxy_opts, register=False, kind="proxy")
        final.update(proxy_acc=proxy["val_acc"], proxy_run_id=proxy["run_id"])
        final[OBJECTIVE] = proxy["val_acc"]
        runs.client(opts.tracking_uri).log_metric(out.run_id, "proxy_acc", proxy["val_acc"], step=cfg.epochs)
    ray.tune.report(final)


def retrain_random(cfg: SearchConfig, sweep: dict[str, Any], retrains: list[tuple[int, int, int]], name: str,
                   tags: dict[str, str]) -> dict[str, Any]:
    """Retrains each ``(draw_seed, draw, retrain_seed)`` genotype with the sweep's proxy recipe;
    returns the figures a trial reports: ``proxy_acc`` (the mean), ``random_best_proxy_acc`` and
    every value (``random_proxy_accs``, JSON)."""
    from sddarts.search_spaces.random_arch import random_genotype

    uri = sweep["tracking_uri"]
    exp_id = runs.experiment_id(uri, sweep["experiment"])
    run_id = runs.open_run(uri, exp_id, name, {"kind": "random", **tags}, sweep["parent_run_id"], True)
    client, accs, genotypes = runs.client(uri), [], []
    with runs.ending(uri, run_id):
        for draw_seed, draw, seed in retrains:
            genotype = random_genotype(cfg.space, draw_seed, draw)
            genotypes.append(genotype.to_dict())
            proxy_cfg = proxy_config(cfg.replace(seed=seed), sweep["proxy_epochs"], sweep.get("proxy_C", 0),
                                     sweep.get("proxy_layers", 0))
            opts = trial_run(sweep, f"{name}-draw{draw_seed}.{draw}-seed{seed}")
            out = run_evaluation(proxy_cfg, GenotypeSource(genotype, run_id, f"random draw {draw} of seed {draw_seed}"),
                                 opts, register=False, kind="proxy")
            accs.append(float(out["val_acc"]))
        client.log_text(run_id, json.dumps({"retrains": retrains, "genotypes": genotypes, "proxy_acc": accs},
                                           indent=2), "random_draws.json")
        final = {"epoch": cfg.epochs, "proxy_acc": sum(accs) / len(accs), "random_best_proxy_acc": max(accs),
                 "random_proxy_accs": json.dumps(accs), "mlflow_run_id": run_id}
        for key in ("proxy_acc", "random_best_proxy_acc"):
            client.log_metric(run_id, key, final[key])
    runs.end_run(uri, run_id, "FINISHED")
    return final
