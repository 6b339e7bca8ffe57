"""Rank-0 logging into the search's one MLflow run, from inside a Ray Train worker.

The driver creates the run (and checks the server) before training; the worker only logs to it
by id with ``MlflowClient``, so it works against a local sqlite store or a remote
``mlflow server`` whose artifact proxy spares workers any shared filesystem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


NOT_METRICS = ("epoch", "step")


class RunLogger:
    """Logs metrics, params and artifacts to one MLflow run; a no-op when ``enabled`` is False."""

    def __init__(self, tracking_uri: str, run_id: str, enabled: bool = True):
        self.run_id = run_id
        self.client = None
        if enabled and run_id:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def log_params(self, params: dict[str, Any]) -> None:
        if self.client:
            from mlflow.entities import Param

            self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        """Logs the numeric entries of ``metrics`` at ``step`` (the epoch), NaN and inf included (a
        diverging run shows as such, not as missing points), except the counters ``epoch`` and
        ``step``, which would only chart as straight lines."""
        if not self.client:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, step) for k, v in metrics.items()
                if k not in NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if rows:
            self.client.log_batch(self.run_id, metrics=rows)

    def logged_steps(self, key: str) -> set[int]:
        """The steps at which metric ``key`` was already logged."""
        if not self.client:
            return set()
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.client:
            from mlflow.entities import RunTag

            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        if self.client:
            self.client.log_text(self.run_id, json.dumps(obj, indent=2), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        if self.client:
            self.client.log_text(self.run_id, text, artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> None:
        """Writes ``data`` as the artifact ``artifact_file`` (a path inside the run)."""
        if not self.client:
            return
        import os
        import tempfile

        folder, name = os.path.split(artifact_file)
        with tempfile.TemporaryDirectory() as d:
            Path(d, name).write_bytes(data)
            self.client.log_artifact(self.run_id, os.path.join(d, name), folder or None)

    def log_file(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        if self.client:
            self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        if self.client:
            self.client.log_figure(self.run_id, figure, artifact_file)
