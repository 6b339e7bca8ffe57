"""What became of each trial (completed, stopped, error...) and the console table of trials."""

from __future__ import annotations

from typing import Any

from sddarts.trainables.workers.fatal import KEY as FATAL_KEY


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
