"""A driver's heartbeat: while a command runs, its run is tagged with the time every minute, so a
RUNNING run whose heartbeat stopped is known to have lost its driver."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Iterator


HEARTBEAT_TAG = "sddarts.heartbeat"


def heartbeat_interval() -> float:
    """Seconds between a driver's heartbeats (``SDDARTS_HEARTBEAT_S``, default 60)."""
    return float(os.environ.get("SDDARTS_HEARTBEAT_S", "60"))


@contextlib.contextmanager
def heartbeat(uri: str, run_id: str) -> Iterator[None]:
    """While the block runs, tags run ``run_id`` with the time every ``heartbeat_interval()``
    seconds: a RUNNING run whose heartbeat stopped lost its driver (``sddarts runs`` says so)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                client.set_tag(run_id, HEARTBEAT_TAG, str(int(time.time())))
            except Exception:  # a tracking server that is away for a while: try again next beat
                pass
            if stop.wait(heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name="sddarts-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def driver_gone(run) -> float | None:
    """Seconds since a RUNNING run's last heartbeat when that is over three intervals (its driver
    died), else None."""
    beat = run.data.tags.get(HEARTBEAT_TAG)
    if run.info.status != "RUNNING" or not beat:
        return None
    silent = time.time() - int(beat)
    return silent if silent > 3 * heartbeat_interval() else None
