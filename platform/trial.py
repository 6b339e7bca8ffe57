"""One trial of a Ray Tune experiment of searches (``sddarts sweep`` and ``sddarts compare``).

A Tune function trainable that fits the search's ``TorchTrainer`` (the Ray Train V2 pattern) and,
when the sweep asks for it, a proxy retrain of the derived genotype. Its MLflow run is the
search's own run, a child of the experiment's parent run.
"""

from __future__ import annotations

from typing import Any

from sddarts.platform import runs
from sddarts.platform.launch import RunOptions
from sddarts.platform.proxy import proxy_config
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.fatal import FATAL_ERRORS
from sddarts.trainables.fatal import KEY as FATAL_KEY

TRIAL_DRIVER_CPU = 0.01  # a trial only drives its TorchTrainer; the workers reserve their own CPUs
OBJECTIVE = "objective"  # reported once, by trials that completed: what the searcher learns from


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

    from sddarts.platform.evaluate import run_evaluation
    from sddarts.platform.registry import GenotypeSource
    from sddarts.platform.search import run_search

    from sddarts.platform.random_arm import RANDOM, retrain_random

    sweep = config["sweep"]
    sampled = {k: v for k, v in config.items() if k not in ("base", "sweep", "variant", "retrains")}
    variant = config.get("variant")  # a comparison's grid names a variant: overrides of the base config
    cfg = SearchConfig.from_dict({**config["base"], **sweep.get("variants", {}).get(variant, {}), **sampled})
    if not cfg.distills:  # one canonical plain-DARTS config
        cfg = cfg.replace(sd_weight=0.0, vote_count=0)
    ctx = ray.tune.get_context()
    if variant == RANDOM or "retrains" in config:  # no search: random genotypes, retrained with the proxy recipe
        retrains = config.get("retrains") or [(cfg.seed, d, cfg.seed) for d in range(sweep["random_draws"])]
        final = retrain_random(cfg, sweep, [tuple(r) for r in retrains], f"{sweep['name']}-{ctx.get_trial_id()}",
                               {"sweep": sweep["name"], "trial_id": ctx.get_trial_id(), "variant": RANDOM})
        ray.tune.report({**final, OBJECTIVE: final["proxy_acc"]})
        return
    opts = RunOptions(name=f"{sweep['name']}-{ctx.get_trial_id()}", tracking_uri=sweep["tracking_uri"],
                      experiment=sweep["experiment"], storage_path=sweep["storage_path"], resume=True)
    try:
        out = run_search(cfg, opts, parent_run_id=sweep["parent_run_id"], callbacks=[epoch_reports()],
                         extra_tags={"kind": "search", "sweep": sweep["name"], "trial_id": ctx.get_trial_id(),
                                     "trial_name": ctx.get_trial_name(), **({"variant": variant} if variant else {})},
                         own_status=False)
    except FATAL_ERRORS as exc:  # it would fail again: end the trial (no Tune retry); the callback fails its run
        ray.tune.report({FATAL_KEY: f"{type(exc).__name__}: {exc}", OBJECTIVE: None})
        return
    final = dict(out.metrics)
    final[OBJECTIVE] = final.get(sweep["metric"])
    if sweep.get("proxy_epochs"):
        proxy_cfg = proxy_config(cfg, sweep["proxy_epochs"], sweep.get("proxy_C", 0), sweep.get("proxy_layers", 0))
        proxy_opts = RunOptions(name=f"{opts.name}-proxy", tracking_uri=opts.tracking_uri, experiment=opts.experiment,
                                storage_path=opts.storage_path, resume=True)
        proxy = run_evaluation(proxy_cfg, GenotypeSource(out.genotype, out.run_id, f"proxy of {opts.name}"),
                               proxy_opts, register=False, kind="proxy")
        final.update(proxy_acc=proxy["val_acc"], proxy_run_id=proxy["run_id"])
        final[OBJECTIVE] = proxy["val_acc"]
        runs.client(opts.tracking_uri).log_metric(out.run_id, "proxy_acc", proxy["val_acc"], step=cfg.epochs)
    ray.tune.report(final)
