"""A Ray Tune experiment of searches, shared by ``sddarts sweep`` and ``sddarts compare``.

Each trial is a Tune function trainable that fits the search's ``TorchTrainer`` (the Ray Train V2
pattern) and, when the sweep asks for it, a proxy retrain of the derived genotype. Its MLflow run
is the search's own run, a child of the experiment's parent run. The driver-side callback ends
every trial's run and logs its records from the latest checkpoint, whoever stopped the trial.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from sddarts.platform import runs
from sddarts.platform.launch import RunOptions
from sddarts.trainables.config import ConfigError, EvalConfig, SearchConfig
from sddarts.trainables.fatal import FATAL_ERRORS
from sddarts.trainables.fatal import KEY as FATAL_KEY

TRIAL_DRIVER_CPU = 0.01  # a trial only drives its TorchTrainer; the workers reserve their own CPUs
OBJECTIVE = "objective"  # reported once, by trials that completed: what the searcher learns from


def proxy_config(cfg: SearchConfig, epochs: int, C: int = 0, layers: int = 0) -> EvalConfig:
    """The proxy retrain of a search's genotype: trained from scratch on the search's w- and alpha-
    data for ``epochs`` epochs, measured on its held-out split; same data, seed and resources, a
    network of ``C`` channels and ``layers`` cells (0: the search's), no auxiliary head, cutout or
    drop-path."""
    shared = ("dataset", "data_dir", "image_size", "data_mean", "data_std", "seed", "batch_size", "steps_per_epoch", "num_workers", "cpus_per_worker",
              "gpus_per_worker", "loader_workers", "max_failures", "holdout_portion", "precision", "channels_last", "augment_on_device")
    return EvalConfig(**{k: getattr(cfg, k) for k in shared}, epochs=epochs, C=C or cfg.C, layers=layers or cfg.layers,
                      auxiliary_weight=0.0, cutout=0, drop_path=0.0).validate()


def add_proxy_flags(group, default_help: str = "0") -> None:
    """``--proxy-epochs``, ``--proxy-C``, ``--proxy-layers``: the proxy retrain of each completed search.
    ``--proxy-epochs`` is None unless given (the command's default applies)."""
    group.add_argument("--proxy-epochs", type=int, default=None, help="retrain each completed search's genotype from "
                       f"scratch for N epochs and report its held-out accuracy, proxy_acc (0: off; default {default_help})")
    group.add_argument("--proxy-C", type=int, default=0, help="proxy network channels (0: the search's C)")
    group.add_argument("--proxy-layers", type=int, default=0, help="proxy network cells (0: the search's layers)")


def proxy_settings(args, base: SearchConfig, default_epochs: int = 0) -> dict[str, int]:
    """The proxy flags (``default_epochs`` where ``--proxy-epochs`` is not given), checked against
    the base config's space."""
    from sddarts.search_spaces import get_space

    if args.proxy_epochs is None:
        args.proxy_epochs = default_epochs
    for name in ("proxy_epochs", "proxy_C", "proxy_layers"):
        if getattr(args, name) < 0:
            raise ConfigError(f"{name} must be >= 0 (got {getattr(args, name)})")
    low = get_space(base.space).min_layers
    if args.proxy_C % 2 or (args.proxy_layers and args.proxy_layers < low):
        raise ConfigError(f"proxy_C must be even and proxy_layers 0 or >= {low} for space {base.space} "
                          f"(got {args.proxy_C}, {args.proxy_layers})")
    return {"proxy_epochs": args.proxy_epochs, "proxy_C": args.proxy_C, "proxy_layers": args.proxy_layers}


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

    sweep = config["sweep"]
    sampled = {k: v for k, v in config.items() if k not in ("base", "sweep", "variant")}
    variant = config.get("variant")  # a comparison's grid names a variant: overrides of the base config
    cfg = SearchConfig.from_dict({**config["base"], **sweep.get("variants", {}).get(variant, {}), **sampled})
    if not cfg.distills:  # one canonical plain-DARTS config
        cfg = cfg.replace(sd_weight=0.0, vote_count=0)
    ctx = ray.tune.get_context()
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


def latest_checkpoint(storage_path: str, name: str) -> "ray.train.Checkpoint | None":
    """The newest registered checkpoint of Train run ``name``, or None."""
    import ray.train

    try:
        return ray.train.Result.from_path(f"{storage_path.rstrip('/')}/{name}").checkpoint
    except RuntimeError:  # no checkpoint registered yet
        return None


def ran_to_end(result: dict[str, Any] | None, epochs: int) -> bool:
    """A search that ended by itself: all ``epochs`` done, or stopped by DARTS-ES (which returns a
    genotype), as opposed to stopped by the scheduler."""
    result = result or {}
    return int(result.get("epoch", 0) or 0) >= epochs or result.get("es_returned_epoch") is not None


def trial_status(trial, epochs: int) -> str:
    """completed, stopped (by the scheduler), error, running or pending."""
    if trial.status == "ERROR" or (trial.last_result or {}).get(FATAL_KEY):
        return "error"
    if trial.status == "TERMINATED":
        return "completed" if ran_to_end(trial.last_result, epochs) else "stopped"
    return trial.status.lower()


def trial_table(trials: list, epochs: int, params: list[str], columns: list[str], ended: dict[str, str]) -> str:
    """One compact line per trial: id, status (``ended`` overrides Tune's for trials just ended),
    its knobs and its latest figures."""
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else "-" if value is None else str(value)

    rows = [["trial", "status", *params, *columns]]
    for t in trials:
        result = t.last_result or {}
        rows.append([t.trial_id, ended.get(t.trial_id) or trial_status(t, epochs), *[cell(t.config.get(p)) for p in params],
                     *[cell(result.get(c)) for c in columns]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows)


def make_callback(ropts: RunOptions, experiment_id: str, parent_run_id: str, epochs: int, params: list[str],
                  columns: list[str], planned: int):
    """Ends each trial's search run once Tune is done with it, after logging its records (genotype,
    alpha, checkpoint, pictures) from its newest checkpoint: FINISHED after the last epoch, KILLED
    with ``stopped_early=asha`` and ``stopped_at_epoch`` when the scheduler stopped it sooner,
    FAILED on error. Tune kills a stopped trial at a report, before its workers could log more; the
    stop reaches the workers asynchronously, so they may have run (and logged) an epoch past it."""
    from ray.tune import Callback

    from sddarts.platform.search import log_records

    uri = ropts.tracking_uri

    def finish(trial, status: str, tags: dict[str, Any]) -> None:
        name = f"{ropts.name}-{trial.trial_id}"
        found = runs.find_run(uri, experiment_id, name, parent_run_id)
        if found is None:
            return
        run_id = found.info.run_id
        try:
            log_records(uri, run_id, latest_checkpoint(ropts.storage_path, name))
        except Exception as exc:  # the run still ends, and says why its records are missing
            tags = {**tags, "records_error": f"{type(exc).__name__}: {exc}"[:4000]}
            print(f"sddarts: could not log the records of trial {trial.trial_id}: {exc}", file=sys.stderr)
        runs.end_run(uri, run_id, status, tags)

    ended: dict[str, str] = {}

    def show(trials, trial, status: str) -> None:
        ended[trial.trial_id] = status
        print(f"[{ropts.name}] {len(ended)} of {planned} trials ended:\n"
              f"{trial_table(trials, epochs, params, columns, ended)}", flush=True)

    class TrialRuns(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            done = int((trial.last_result or {}).get("epoch", 0) or 0)
            fatal = (trial.last_result or {}).get(FATAL_KEY)
            if fatal:  # a config or data error, on its first attempt
                finish(trial, "FAILED", {"error": str(fatal)[:4000]})
                show(trials, trial, "error")
            elif ran_to_end(trial.last_result, epochs):
                finish(trial, "FINISHED", {})
                show(trials, trial, "completed")
            else:
                finish(trial, "KILLED", {"stopped_early": "asha", "stopped_at_epoch": done,
                                         "end_reason": f"stopped by the scheduler at its epoch-{done} rung"})
                show(trials, trial, "stopped")

        def on_trial_error(self, iteration, trials, trial, **info):
            finish(trial, "FAILED", {"error": str(trial.error_file or "trial error")})
            show(trials, trial, "error")

    return TrialRuns()


def max_concurrent(cfg: SearchConfig, resources: dict[str, float], cap: int) -> int:
    """How many trials fit at once, so that no trial waits forever for its workers."""
    fits = [math.floor(resources.get("CPU", 0) / (cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU))]
    if cfg.gpus_per_worker:
        fits.append(math.floor(resources.get("GPU", 0) / (cfg.num_workers * cfg.gpus_per_worker)))
    n = max(1, min(fits))
    return min(n, cap) if cap else n


def trainable():
    import ray.tune

    return ray.tune.with_resources(search_trial, {"CPU": TRIAL_DRIVER_CPU})


def build_tuner(base: SearchConfig, ropts: RunOptions, exp_id: str, parent: str, sweep: dict[str, Any],
                grid: dict[str, Any], params: list[str], planned: int, tune_config) -> "ray.tune.Tuner":
    """The one place a Tuner of searches is built: each trial runs ``search_trial`` with the base
    config, plus what the searcher samples or the ``grid`` enumerates. ``sweep``: the metric and
    proxy settings every trial reads."""
    import ray.tune

    from sddarts.platform.state_saves import StateOnStorage

    sweep_meta = {"name": ropts.name, "tracking_uri": ropts.tracking_uri, "experiment": ropts.experiment,
                  "storage_path": ropts.storage_path, "parent_run_id": parent, **sweep}
    columns = ["epoch", sweep["metric"]] + (["proxy_acc"] if sweep.get("proxy_epochs") else [])
    return ray.tune.Tuner(
        trainable(),
        param_space={"base": base.to_dict(), "sweep": sweep_meta, **grid},
        tune_config=tune_config,
        run_config=ray.tune.RunConfig(
            name=ropts.name, storage_path=ropts.storage_path, verbose=0,  # our table, not Tune's
            failure_config=ray.tune.FailureConfig(max_failures=1),
            callbacks=[make_callback(ropts, exp_id, parent, base.epochs, params, columns, planned),
                       StateOnStorage()]),
    )


def restore_tuner(ropts: RunOptions) -> "ray.tune.Tuner":
    """Tune's restore of an interrupted experiment; finished trials are not rerun."""
    import ray.tune

    return ray.tune.Tuner.restore(f"{ropts.storage_path.rstrip('/')}/{ropts.name}", trainable=trainable(),
                                  resume_errored=True)


def fit_tuner(tuner, planned: int):
    """Fits the Tuner. Tune answers Ctrl-C by saving its state and returning early, so fewer ended
    trials than ``planned`` is an interruption too (raised as KeyboardInterrupt). A failed copy of
    Tune's state to storage is one warning line (``state_saves``)."""
    from sddarts.platform.state_saves import quiet_failed_saves

    with quiet_failed_saves():
        results = tuner.fit()
    if results.num_terminated + results.num_errors < planned:
        raise KeyboardInterrupt()
    return results
