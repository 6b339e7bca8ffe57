"""MLflow runs on the driver, by name: the experiment a run goes in, finding a run again by its name
(any characters: a hash of it is a tag, since filter strings cannot escape every name) or its id,
and a run's life: created (or reopened on resume) and always ended, FINISHED, KILLED on interrupt
or FAILED on error (``ending``, the one place that does the last two).

Workers only log into a run by id (``sddarts.trainables.workers.run_logger``).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
from pathlib import Path
from typing import Any, Iterator

from sddarts.search_spaces.errors import TrackingError


def client(uri: str):
    """An ``MlflowClient`` of store ``uri`` (mlflow is imported on first use)."""
    from mlflow import MlflowClient

    return MlflowClient(uri)


def artifact_root(uri: str) -> str | None:
    """For a sqlite store, artifacts go in ``mlartifacts/`` beside the database file."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


DEFAULT_EXPERIMENT = "sddarts"
NAME_TAG = "sddarts.name"
NAME_KEY_TAG = "sddarts.name_key"  # a hash of the name: filter strings cannot escape every name
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI's model-training view


def experiment_id(uri: str, name: str) -> str:
    """The id of experiment ``name``, creating it (with artifacts beside a sqlite store) if needed.
    It is tagged as a model-training experiment, so the MLflow UI opens on its runs."""
    from mlflow.exceptions import MlflowException

    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, artifact_location=artifact_root(uri), tags=EXPERIMENT_KIND)
        except MlflowException:  # two commands started at once into a new store: the other one made it
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
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


def open_run(uri: str, exp_id: str, name: str, tags: dict[str, str], parent_run_id: str | None = None,
             resume: bool = False) -> str:
    """Creates run ``name``, or with ``resume`` reopens the existing one; returns its id."""
    c = client(uri)
    existing = find_run(uri, exp_id, name, parent_run_id)
    if existing is not None:
        if not resume:
            raise TrackingError(f"a run named {name!r} already exists ({existing.info.run_id}); "
                                f"pass --resume {name} to continue it or choose another --name")
        c.update_run(existing.info.run_id, status="RUNNING")
        for stale in ("error", "end_reason", "fatal_error"):  # of the attempt that ended before
            if stale in existing.data.tags:
                c.delete_tag(existing.info.run_id, stale)
        return existing.info.run_id
    if resume and parent_run_id is None:
        raise TrackingError(f"no run named {name!r} in this tracking store to resume")
    all_tags = {NAME_TAG: name, NAME_KEY_TAG: name_key(name), **tags}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    return c.create_run(exp_id, run_name=name, tags=all_tags).info.run_id


def end_run(uri: str, run_id: str, status: str, tags: dict[str, Any] | None = None) -> None:
    """Ends a run as FINISHED, FAILED or KILLED (never leaves it RUNNING)."""
    c = client(uri)
    for k, v in (tags or {}).items():
        c.set_tag(run_id, k, str(v))
    c.set_terminated(run_id, status=status)


def error_tag(exc: BaseException) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {exc}"[:4000]}


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``ray job stop``, ``kill``), handled like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated()


@contextlib.contextmanager
def ending(uri: str, run_id: str) -> Iterator[None]:
    """Whatever runs inside ends run ``run_id`` KILLED on Ctrl-C or SIGTERM (re-raised as
    KeyboardInterrupt) and FAILED on any error (the error as a tag, re-raised). The caller ends
    it FINISHED after the block."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    if in_main:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as exc:  # Ray's fit() aborts on Ctrl-C with SystemExit
        end_run(uri, run_id, "KILLED", {"end_reason": "interrupted"})
        raise KeyboardInterrupt() from exc
    except BaseException as exc:
        end_run(uri, run_id, "FAILED", error_tag(exc))
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
