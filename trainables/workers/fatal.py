"""Errors that would repeat on every attempt: any ``SddartsError`` (bad config, bad data, a genotype
that does not fit, a checkpoint that cannot be read safely, a full storage path; see
``search_spaces/errors.py``). A worker that meets one ends its run by reporting it as
``fatal_error`` rather than raising, so Ray Train does not restart the worker group for it (as it
does for a lost worker or node, from the latest checkpoint); the driver then fails the run on its
first attempt with the error's one line (``raise_if_fatal``)."""

from __future__ import annotations

from typing import Any, Callable

from sddarts.search_spaces.errors import SddartsError, StorageFullError, error_types

KEY = "fatal_error"


def reporting_fatal(loop: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``loop`` (a ``train_loop_per_worker``) that reports a fatal error instead of raising it."""
    import functools

    @functools.wraps(loop)
    def wrapped(config: dict[str, Any]) -> None:
        import ray.train

        try:
            loop(config)
        except SddartsError as exc:
            text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            run = config.get("run", {})
            if ray.train.get_context().get_world_rank() == 0 and run.get("run_id"):
                from mlflow import MlflowClient  # the driver reads it there: Train keeps only checkpointed metrics

                MlflowClient(run["tracking_uri"]).set_tag(run["run_id"], KEY, text[:4000])
            if isinstance(exc, StorageFullError):  # a report after a failed checkpoint upload never returns (Ray 2.60)
                return
            ray.train.report({KEY: text})

    return wrapped


def raise_if_fatal(metrics: dict[str, Any] | None, tracking_uri: str = "", run_id: str = "") -> None:
    """Raises the error a worker reported as fatal (its own type, its one line), if any: in the
    run's final metrics, or as the ``fatal_error`` tag rank 0 set on MLflow run ``run_id``."""
    text = (metrics or {}).get(KEY)
    if not text and run_id:
        from mlflow import MlflowClient

        text = MlflowClient(tracking_uri).get_run(run_id).data.tags.get(KEY)
    if text:
        name, _, message = str(text).partition(": ")
        raise error_types().get(name, RuntimeError)(message or text)
