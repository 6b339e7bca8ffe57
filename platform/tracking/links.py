"""Where to see a run: links into the MLflow UI, in its model-training view."""

from __future__ import annotations

TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3.17's UI opens in its GenAI view unless told (compat/)


def ui_link(base: str, exp_id: str, run_id: str | None = None) -> str:
    """The UI page of an experiment (or of one of its runs), in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{exp_id}" + (f"/runs/{run_id}" if run_id else "") + f"?{TRAINING_VIEW}"
