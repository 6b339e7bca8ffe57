"""The one place a Ray Tune experiment of searches is built, restored and fitted: how many trials
fit at once, and the driver-side callback that ends every trial's MLflow run (after logging its
records from its newest checkpoint), whoever stopped the trial."""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from sddarts.platform.options import RunOptions
from sddarts.platform.tracking import runs
from sddarts.platform.tuning.trial_table import ran_to_end, trial_table
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.workers.fatal import KEY as FATAL_KEY

if TYPE_CHECKING:
    import ray.tune

TRIAL_DRIVER_CPU = 0.01  # a trial only drives its TorchTrainer; the workers reserve their own CPUs
Trial = Callable[[dict[str, Any]], None]  # a Tune function trainable (``trial.search_trial``)


def max_concurrent(cfg: SearchConfig, resources: dict[str, float], cap: int) -> int:
    """How many trials fit at once, so that no trial waits forever for its workers."""
    fits = [math.floor(resources.get("CPU", 0) / (cfg.num_workers * cfg.cpus_per_worker + TRIAL_DRIVER_CPU))]
    if cfg.gpus_per_worker:
        fits.append(math.floor(resources.get("GPU", 0) / (cfg.num_workers * cfg.gpus_per_worker)))
    n = max(1, min(fits))
    return min(n, cap) if cap else n


def trainable(trial: Trial):
    """``trial`` as Tune runs it: a driver of TRIAL_DRIVER_CPU CPUs (its workers reserve their own)."""
    import ray.tune

    return ray.tune.with_resources(trial, {"CPU": TRIAL_DRIVER_CPU})


def build_tuner(trial: Trial, base: SearchConfig, ropts: RunOptions, exp_id: str, parent: str,
                sweep: dict[str, Any], grid: dict[str, Any], params: list[str], planned: int,
                tune_config) -> "ray.tune.Tuner":
    """The one place a Tuner of searches is built: each trial runs ``trial`` with the base config,
    plus what the searcher samples or the ``grid`` enumerates. ``sweep``: the metric and proxy
    settings every trial reads."""
    import ray.tune

    from sddarts.platform.compat.tune_state_saves import StateOnStorage

    sweep_meta = {"name": ropts.name, "tracking_uri": ropts.tracking_uri, "experiment": ropts.experiment,
                  "storage_path": ropts.storage_path, "system_metrics": ropts.system_metrics,
                  "system_metrics_interval": ropts.system_metrics_interval,
                  "progress_interval": ropts.progress_interval, "parent_run_id": parent, **sweep}
    columns = list(dict.fromkeys(["epoch", sweep["metric"]] + (["proxy_acc"] if sweep.get("proxy_epochs") else [])))
    return ray.tune.Tuner(
        trainable(trial),
        param_space={"base": base.to_dict(), "sweep": sweep_meta, **grid},
        tune_config=tune_config,
        run_config=ray.tune.RunConfig(
            name=ropts.name, storage_path=ropts.storage_path, verbose=0,  # our table, not Tune's
            failure_config=ray.tune.FailureConfig(max_failures=base.max_failures),  # a trial's restarts (trial.py)
            callbacks=[make_callback(ropts, exp_id, parent, base.epochs, params, columns, planned),
                       StateOnStorage()]),
    )


def restore_tuner(trial: Trial, ropts: RunOptions) -> "ray.tune.Tuner":
    """Tune's restore of an interrupted experiment; finished trials are not rerun."""
    import ray.tune

    return ray.tune.Tuner.restore(f"{ropts.storage_path.rstrip('/')}/{ropts.name}", trainable=trainable(trial),
                                  resume_errored=True)


def fit_tuner(tuner, planned: int):
    """Fits the Tuner. Tune answers Ctrl-C by saving its state and returning early: that, or fewer
    ended trials than ``planned``, is raised as KeyboardInterrupt (``compat.tune_interrupts``). A
    failed copy of Tune's state to storage is one warning line (``compat.tune_state_saves``)."""
    from sddarts.platform.compat.tune_interrupts import fit_noting_interrupt
    from sddarts.platform.compat.tune_state_saves import quiet_failed_saves

    with quiet_failed_saves():
        results, interrupted = fit_noting_interrupt(tuner.fit)
    if interrupted or results.num_terminated + results.num_errors < planned:
        raise KeyboardInterrupt()
    return results


def trials_done(done: int, planned: int, elapsed: float, done_here: int | None = None) -> str:
    """``3 of 8 trials done (37%) in 4m10s, ETA 6m57s``, at the pace of the ``done_here`` trials
    this driver ran in ``elapsed`` (all ``done``, unless a resumed sweep had some done before)."""
    from sddarts.trainables.workers.progress import duration

    done_here = done if done_here is None else done_here
    eta = elapsed / done_here * (planned - done) if done_here else float("nan")
    return (f"{done} of {planned} trials done ({100 * done // planned}%) in {duration(elapsed)}"
            + (f", ETA {duration(eta)}" if done < planned else ""))


def latest_checkpoint(storage_path: str, name: str):
    """The newest registered checkpoint (a ``ray.train.Checkpoint``) of Train run ``name``, or None."""
    import ray.train

    try:
        return ray.train.Result.from_path(f"{storage_path.rstrip('/')}/{name}").checkpoint
    except RuntimeError:  # no checkpoint registered yet
        return None


def make_callback(ropts: RunOptions, experiment_id: str, parent_run_id: str, epochs: int, params: list[str],
                  columns: list[str], planned: int):
    """Ends each trial's search run once Tune is done with it, after logging its records (genotype,
    alpha, checkpoint, pictures) from its newest checkpoint: FINISHED after the last epoch, KILLED
    with ``stopped_early=asha`` and ``stopped_at_epoch`` when the scheduler stopped it sooner,
    FAILED on error. Tune kills a stopped trial at a report, before its workers could log more; the
    stop reaches the workers asynchronously, so they may have run (and logged) an epoch past it."""
    from ray.tune import Callback

    from sddarts.trainables.workers.search_records import log_final_records

    uri = ropts.tracking_uri

    def finish(trial, status: str, tags: dict[str, Any]) -> None:
        name = f"{ropts.name}-{trial.trial_id}"
        found = runs.find_run(uri, experiment_id, name, parent_run_id)
        if found is None:
            return
        run_id = found.info.run_id
        try:
            log_final_records(uri, run_id, latest_checkpoint(ropts.storage_path, name))
        except Exception as exc:  # the run still ends, and says why its records are missing
            tags = {**tags, "records_error": f"{type(exc).__name__}: {exc}"[:4000]}
            print(f"sddarts: could not log the records of trial {trial.trial_id}: {exc}", file=sys.stderr)
        runs.end_run(uri, run_id, status, tags)

    ended: dict[str, str] = {}
    started = time.monotonic()

    def show(trials, trial, status: str) -> None:
        ended[trial.trial_id] = status  # a resumed sweep's trials that ended before count as done too
        done = set(ended) | {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")}
        print(f"[{ropts.name}] {trials_done(len(done), planned, time.monotonic() - started, len(ended))}:\n"
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
