"""The one place a Tuner of searches is built, restored and fitted, and how many trials fit at once."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sddarts.platform.launch import RunOptions
from sddarts.platform.trial import TRIAL_DRIVER_CPU, search_trial
from sddarts.platform.trial_runs import make_callback
from sddarts.trainables.config import SearchConfig

if TYPE_CHECKING:
    import ray.tune


def max_concurrent(cfg: SearchConfig, resources: dict[str, float], cap: int) -> int:
    """How many trials fit at once, so that no trial waits forever for its workers."""
    fits = [math.floor(resources.get("CPU", 0) / (cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU))]
    if cfg.gpus_per_worker:
        fits.append(math.floor(resources.get("GPU", 0) / (cfg.num_workers * cfg.gpus_per_worker)))
    n = max(1, min(fits))
    return min(n, cap) if cap else n


def trainable():
    """``search_trial`` as Tune runs it: a driver of TRIAL_DRIVER_CPU CPUs (its workers reserve their own)."""
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
    columns = list(dict.fromkeys(["epoch", sweep["metric"]] + (["proxy_acc"] if sweep.get("proxy_epochs") else [])))
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
