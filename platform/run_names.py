"""Runs by name: the experiment a run goes in, and finding a run again by its name (any
characters: a hash of it is a tag, since filter strings cannot escape every name) or its id."""

from __future__ import annotations

import hashlib

from sddarts.platform.tracking_store import artifact_root, client

DEFAULT_EXPERIMENT = "sddarts"
NAME_TAG = "sddarts.name"
NAME_KEY_TAG = "sddarts.name_key"  # a hash of the name: filter strings cannot escape every name
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI's model-training view


def experiment_id(uri: str, name: str) -> str:
    """The id of experiment ``name``, creating it (with artifacts beside a sqlite store) if needed.
    It is tagged as a model-training experiment, so the MLflow UI opens on its runs."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return c.create_experiment(name, artifact_location=artifact_root(uri), tags=EXPERIMENT_KIND)
    if "mlflow.experimentKind" not in exp.tags:  # an experiment from before, or made by hand
        c.set_experiment_tag(exp.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
    return exp.experiment_id


def name_key(name: str) -> str:
    """A filter-safe key for a run name (any characters)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


def find_run(uri: str, exp_id: str, name: str, parent_run_id: str | None = None):
    """The newest run named ``name`` (optionally under ``parent_run_id``), or None."""
    query = f"tags.`{NAME_KEY_TAG}` = '{name_key(name)}'"
    if parent_run_id:
        query += f" and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    runs = client(uri).search_runs([exp_id], filter_string=query, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def find_run_by_name(uri: str, experiment: str, name: str):
    """The newest run named ``name`` in ``experiment``, or None (None too when the experiment is new)."""
    exp = client(uri).get_experiment_by_name(experiment)
    return find_run(uri, exp.experiment_id, name) if exp else None


def lookup(uri: str, experiment: str, key: str):
    """A run by id, else the newest run named ``key`` in ``experiment``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client(uri).get_run(key)
    except MlflowException:
        exp = client(uri).get_experiment_by_name(experiment)
        return find_run(uri, exp.experiment_id, key) if exp else None
