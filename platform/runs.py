"""The life of a run on the driver: created (or reopened on resume) and always ended, FINISHED,
KILLED on interrupt or FAILED on error (``ending``, the one place that does the last two).

Workers only log into a run by id (``sddarts.trainables.run_logger``). The driver's other MLflow
concerns each have their own file, re-exported here so that callers import one module:
``tracking_store`` (which store, is it usable), ``run_names`` (experiments, finding a run by name),
``heartbeat`` and ``links``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from sddarts.platform.heartbeat import HEARTBEAT_TAG, driver_gone, heartbeat, heartbeat_interval
from sddarts.platform.links import TRAINING_VIEW, run_url, ui_link
from sddarts.platform.run_names import (DEFAULT_EXPERIMENT, EXPERIMENT_KIND, NAME_KEY_TAG, NAME_TAG, experiment_id,
                                        find_run, find_run_by_name, lookup, name_key)
from sddarts.platform.tracking_store import (TrackingError, artifact_root, check_credentials, check_store_location,
                                             check_tracking, client, resolve_tracking_uri, store_missing)

__all__ = ["open_run", "end_run", "error_tag", "ending", "HEARTBEAT_TAG", "driver_gone", "heartbeat",
           "heartbeat_interval", "TRAINING_VIEW", "run_url", "ui_link", "DEFAULT_EXPERIMENT", "EXPERIMENT_KIND",
           "NAME_KEY_TAG", "NAME_TAG", "experiment_id", "find_run", "find_run_by_name", "lookup", "name_key",
           "TrackingError", "artifact_root", "check_credentials", "check_store_location", "check_tracking", "client",
           "resolve_tracking_uri", "store_missing"]


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
