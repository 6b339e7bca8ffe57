"""The driver-side Tune callback that ends every trial's MLflow run, after logging its records
from its newest checkpoint, whoever stopped the trial."""

from __future__ import annotations

import sys
from typing import Any

from sddarts.platform import runs
from sddarts.platform.launch import RunOptions
from sddarts.platform.trial_table import ran_to_end, trial_table
from sddarts.trainables.fatal import KEY as FATAL_KEY


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
