"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`, 1 CPU
each), a job submitted with `ray job submit`, runs landing in a real `mlflow server` (sqlite,
--serve-artifacts) on 127.0.0.1 with MLflow's basic-auth app, as the cluster files start it: the
job's credentials reach its Train workers on both nodes, a client without them cannot write, and
the CLI says so in one line before anything starts. Checked over MLflow's REST API."""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ray
BIN = Path(sys.executable).parent
PASSWORD = "sddarts-test-secret-1"  # MLflow wants 12 characters or more
AUTH = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    token = base64.b64encode(f"{AUTH['MLFLOW_TRACKING_USERNAME']}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json",
                                                          "Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(check, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every process group at once, then SIGKILL to what still runs after 5 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ray_cluster_yaml_passes_the_launchers_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = Path(__file__).resolve().parents[1].joinpath("ray_cluster.yaml").read_text()
    config = prepare_config(yaml.safe_load(raw))
    validate_config(config)
    setup = "\n".join(config["setup_commands"])
    assert "pip install" in setup and "-e /home/ubuntu/sddarts" in setup and "ray[default,tune,train]==2.60.0" in setup
    start = "\n".join(config["head_start_ray_commands"])
    assert "mlflow server" in start and "--serve-artifacts" in start and "0.0.0.0" not in start
    assert "--app-name basic-auth" in start and "MLFLOW_AUTH_ADMIN_PASSWORD" in start  # nobody writes unauthenticated
    assert "mlflow[auth]==3.17.2" in setup


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray

    if ray.is_initialized():  # one Ray per host at a time
        ray.shutdown()
    tmp = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    (tmp / "auth.ini").write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp}/auth.db\n"
                                  "admin_username = admin\n"
                                  "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server_env = {**env, "MLFLOW_AUTH_CONFIG_PATH": str(tmp / "auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
                  "MLFLOW_FLASK_SERVER_SECRET_KEY": "sddarts-test-key"}
    gcs, dash, mlflow_port = _port(), _port(), _port()
    procs = []

    def start(args, log, env=env):
        p = subprocess.Popen(args, env=env, cwd=tmp, stdout=(tmp / log).open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        start([str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}", "--node-ip-address=127.0.0.1",
               "--num-cpus=1", "--num-gpus=0", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
               f"--dashboard-port={dash}", "--disable-usage-stats"], "head.log")
        _wait(lambda: _get(f"http://127.0.0.1:{dash}/api/version"), 90, "the head node")
        start([str(BIN / "ray"), "start", "--block", f"--address=127.0.0.1:{gcs}", "--node-ip-address=127.0.0.1",
               "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"], "worker.log")
        start([str(BIN / "mlflow"), "server", "--app-name", "basic-auth", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
               "--artifacts-destination", str(tmp / "artifacts"), "--serve-artifacts",
               "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"], "mlflow.log", server_env)
        _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health", timeout=5).status == 200,
              90, "the mlflow server")

        def two_nodes():
            out = subprocess.run([str(BIN / "ray"), "list", "nodes", "--format", "json", "--address",
                                  f"http://127.0.0.1:{dash}"], env=env, capture_output=True, text=True, timeout=30)
            return len([n for n in json.loads(out.stdout) if n["state"] == "ALIVE"]) == 2

        _wait(two_nodes, 90, "two alive nodes")
        yield {"dashboard": f"http://127.0.0.1:{dash}", "mlflow": f"http://127.0.0.1:{mlflow_port}", "tmp": tmp, "env": env}
    finally:
        _stop(procs)  # every process this test started
        from sddarts.platform.compat.ray_local import forget_dead_cluster

        forget_dead_cluster()  # what `ray stop` does: later local Rays must not resolve this dead head


def test_job_on_two_nodes_logs_to_the_tracking_server(cluster):
    tmp, uri = cluster["tmp"], cluster["mlflow"]
    job = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", cluster["dashboard"], "--",
         "env", *(f"{k}={v}" for k, v in AUTH.items()),  # credentials in the driver's environment only
         sys.executable, "-m", "sddarts.platform.commands.cli", "search", "--C", "4", "--layers", "3", "--epochs", "2",
         "--steps-per-epoch", "3", "--num-workers", "2", "--cpus-per-worker", "1", "--name", "two-nodes",
         "--tracking-uri", uri, "--storage-path", str(tmp / "runs")],
        env=cluster["env"], capture_output=True, text=True, timeout=600)
    logs = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in logs, logs[-4000:]
    assert "2 worker(s) on 2 node(s)" in logs, logs[-4000:]  # one worker on each node

    exp = _get(f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=sddarts")["experiment"]
    runs = _get(f"{uri}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    assert len(runs) == 1 and runs[0]["info"]["status"] == "FINISHED"
    tags = {t["key"]: t["value"] for t in runs[0]["data"]["tags"]}
    assert tags["train_nodes"] == "2" and tags["train_workers"] == "2"
    run_id = runs[0]["info"]["run_id"]
    history = _get(f"{uri}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=val_acc")["metrics"]
    assert sorted(m["step"] for m in history) == [1, 2]
    files = {f["path"] for f in _get(f"{uri}/api/2.0/mlflow/artifacts/list?run_id={run_id}")["files"]}
    assert "genotype.json" in files
    assert runs[0]["info"]["artifact_uri"].startswith("mlflow-artifacts:")  # uploaded through the server's proxy
    assert any((tmp / "artifacts").rglob("genotype.json"))


def test_without_credentials_nothing_is_written_and_the_cli_says_why(cluster, tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from sddarts.platform.commands.cli import main

    for key in (*AUTH, "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    uri = cluster["mlflow"]
    with pytest.raises(MlflowException):
        MlflowClient(uri).create_experiment("intruder")
    exp = _get(f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=sddarts")["experiment"]
    (run,) = _get(f"{uri}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    with pytest.raises(MlflowException):
        MlflowClient(uri).log_metric(run["info"]["run_id"], "tampered", 1.0)
    assert main(["search", "--tracking-uri", uri, "--storage-path", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs credentials" in err[0] and "are not set" in err[0], err


def test_dead_tracking_server_fails_fast_before_training(tmp_path, capsys):
    from sddarts.platform.commands.cli import main

    t0 = time.time()
    assert main(["search", "--tracking-uri", f"http://127.0.0.1:{_port()}", "--storage-path", str(tmp_path)]) == 2
    assert time.time() - t0 < 10
    err = capsys.readouterr().err
    assert "is not reachable" in err and not any(tmp_path.iterdir())
