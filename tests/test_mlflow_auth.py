"""A tracking server with MLflow's basic-auth app, as the cluster files start it: a search with
the credentials logs from its Ray workers; a client without them cannot write, and the CLI says so
in one line before anything starts."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers import tiny_search

BIN = Path(sys.executable).parent
PASSWORD = "sddarts-test-secret-1"  # MLflow wants 12 characters or more


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "auth.ini").write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp}/auth.db\n"
                                  "admin_username = admin\n"
                                  "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp / "auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "sddarts-test-key"}
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--app-name", "basic-auth", "--backend-store-uri",
                               f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts"),
                               "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              env=env, stdout=(tmp / "server.log").open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        raise AssertionError((tmp / "server.log").read_text()[-3000:])
    yield uri, tmp
    os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn workers
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=20)


@pytest.fixture
def no_credentials(monkeypatch):
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)


def test_without_credentials_nothing_is_written_and_the_cli_says_why(auth_server, no_credentials, tmp_path, capsys):
    from sddarts.platform.commands.cli import main

    uri, _ = auth_server
    with pytest.raises(MlflowException):
        MlflowClient(uri).create_experiment("intruder")
    assert main(["search", "--tracking-uri", uri, "--storage-path", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs credentials" in err[0] and "are not set" in err[0], err


@pytest.mark.ray
def test_a_search_with_credentials_logs_from_its_workers(auth_server, ray_session, tmp_path, monkeypatch):
    from sddarts.platform.options import RunOptions
    from sddarts.platform.jobs import run_search

    uri, _ = auth_server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    out = run_search(tiny_search(epochs=2), RunOptions(name="authed", tracking_uri=uri, storage_path=str(tmp_path / "runs")))
    run = MlflowClient(uri).get_run(out.run_id)
    assert run.info.status == "FINISHED"
    assert [m.step for m in MlflowClient(uri).get_metric_history(out.run_id, "val_acc")] == [1, 2]  # from the worker
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException):
        MlflowClient(uri).log_metric(out.run_id, "tampered", 1.0)
