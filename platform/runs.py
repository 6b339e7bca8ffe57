"""MLflow on the driver side: where runs go, checking the server, and the life of a run.

Workers only log into a run by id (``sddarts.trainables.run_logger``); the driver creates the
run, finds it again on resume, and always ends it: FINISHED, KILLED on interrupt, FAILED on error
(``ending``, the one place that does the last two).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

DEFAULT_EXPERIMENT = "sddarts"
NAME_TAG = "sddarts.name"
NAME_KEY_TAG = "sddarts.name_key"  # a hash of the name: filter strings cannot escape every name


class TrackingError(RuntimeError):
    """The tracking store cannot be used. The message says what to do."""


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``.

    Relative sqlite paths are made absolute, since Ray workers run in other directories.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    if not uri.startswith(("sqlite:", "http://", "https://", "postgresql", "mysql", "databricks")):
        raise TrackingError(f"tracking_uri {uri!r} is not supported: MLflow 3.13+ refuses file stores; "
                            "use sqlite:///path/mlflow.db or http://host:port of an mlflow server")
    return uri


def artifact_root(uri: str) -> str | None:
    """For a sqlite store, artifacts go in ``mlartifacts/`` beside the database file."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
    return None


def check_tracking(uri: str, timeout: float = 5.0) -> None:
    """Fails fast, with a clear message, when an MLflow server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status != 200:
                raise TrackingError(f"MLflow server at {uri} answered /health with HTTP {resp.status}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"MLflow tracking server at {uri} is not reachable ({reason}); start it "
                            "(mlflow server --host 127.0.0.1 --port 5000) or pass another --tracking-uri") from None
    check_credentials(uri, timeout)


def check_credentials(uri: str, timeout: float = 5.0) -> None:
    """A server with authentication (``mlflow server --app-name basic-auth``) must accept this
    process's ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``)."""
    import base64

    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    user, password, token = (os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                                                          "MLFLOW_TRACKING_TOKEN"))
    if user and password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            given = "were refused" if (user or token) else "are not set"
            raise TrackingError(f"MLflow server at {uri} needs credentials, and MLFLOW_TRACKING_USERNAME/"
                                f"MLFLOW_TRACKING_PASSWORD {given} (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, TimeoutError):
        pass  # /health answered; other API trouble surfaces where it happens


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


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


def store_missing(uri: str) -> bool:
    """True for a sqlite store whose file does not exist (reading commands should not create it)."""
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file()


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


def check_store_location(uri: str) -> None:
    """A sqlite store needs a file path whose folder exists and is writable (Ray workers open the
    same file; an in-memory store would be theirs alone)."""
    if not uri.startswith("sqlite:"):
        return
    path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        raise TrackingError(f"tracking_uri {uri!r} is an in-memory store, which Ray workers cannot share; "
                            "use sqlite:///path/mlflow.db")
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise TrackingError(f"tracking_uri {uri}: folder {folder} does not exist (create it, or pick another path)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TrackingError(f"tracking_uri {uri}: folder {folder} is not writable")


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


TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3.17's UI opens in its GenAI view unless told


def ui_link(base: str, exp_id: str, run_id: str | None = None) -> str:
    """The UI page of an experiment (or of one of its runs), in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{exp_id}" + (f"/runs/{run_id}" if run_id else "") + f"?{TRAINING_VIEW}"


HEARTBEAT_TAG = "sddarts.heartbeat"


def heartbeat_interval() -> float:
    """Seconds between a driver's heartbeats (``SDDARTS_HEARTBEAT_S``, default 60)."""
    return float(os.environ.get("SDDARTS_HEARTBEAT_S", "60"))


@contextlib.contextmanager
def heartbeat(uri: str, run_id: str) -> Iterator[None]:
    """While the block runs, tags run ``run_id`` with the time every ``heartbeat_interval()``
    seconds: a RUNNING run whose heartbeat stopped lost its driver (``sddarts runs`` says so)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                client(uri).set_tag(run_id, HEARTBEAT_TAG, str(int(time.time())))
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


def run_url(uri: str, exp_id: str, run_id: str) -> str:
    """Where to see a run: its UI page for a server, else the command that serves the UI."""
    if uri.startswith(("http://", "https://")):
        return ui_link(uri, exp_id, run_id)
    from sddarts.platform.shell import command_name

    return f"{command_name()} ui --tracking-uri {uri}   then open {ui_link('http://127.0.0.1:5000', exp_id, run_id)}"
