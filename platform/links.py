"""Where to see a run: links into the MLflow UI, in its model-training view."""

from __future__ import annotations

TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3.17's UI opens in its GenAI view unless told


def ui_link(base: str, exp_id: str, run_id: str | None = None) -> str:
    """The UI page of an experiment (or of one of its runs), in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{exp_id}" + (f"/runs/{run_id}" if run_id else "") + f"?{TRAINING_VIEW}"


def run_url(uri: str, exp_id: str, run_id: str) -> str:
    """Where to see a run: its UI page for a server, else the command that serves the UI."""
    if uri.startswith(("http://", "https://")):
        return ui_link(uri, exp_id, run_id)
    from sddarts.platform.shell import command_name

    return f"{command_name()} ui --tracking-uri {uri}   then open {ui_link('http://127.0.0.1:5000', exp_id, run_id)}"
