"""The MLflow tracking store on the driver: which one (``resolve_tracking_uri``) and whether it can
be used (``check_tracking``, ``check_credentials``, ``check_store_location``, ``store_missing``)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from sddarts.search_spaces.errors import TrackingError




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


def store_missing(uri: str) -> bool:
    """True for a sqlite store whose file does not exist (reading commands should not create it)."""
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file()


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
