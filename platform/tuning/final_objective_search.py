"""The sweep's searcher: Optuna's TPE, told only about trials that completed.

Per-epoch results carry ``objective: None`` (Tune requires the searcher's metric in every
result); only a completed trial's last result holds a number. So TPE learns from completed
trials' final objective alone, and a trial the scheduler stopped reaches Optuna as pruned.
"""

from __future__ import annotations

from ray.tune.search.optuna import OptunaSearch


class FinalObjectiveSearch(OptunaSearch):
    """OptunaSearch that skips results without a value for its metric."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if result.get(self.metric) is not None:
            super().on_trial_result(trial_id, result)
