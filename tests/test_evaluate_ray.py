"""The evaluation stage: retrain a searched genotype with Ray Train, log and register it in MLflow."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mlflow import MlflowClient

from helpers import wait_for_free_cpus
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray

EVAL_TINY = ["--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "4", "--num-workers", "1",
             "--cpus-per-worker", "0.5", "--batch-size", "64"]


def test_an_evaluated_search_is_a_registered_child_run_with_a_working_model(readme_runs):
    """The README block's evaluation of its search (``readme_runs``): the registry's version, the
    run beneath its search, and the model on raw images."""
    search, uri = readme_runs.found, readme_runs.uri
    client = MlflowClient(uri)
    version = client.get_model_version("sddarts-darts-digits", "1")
    tags = version.tags
    assert tags["search_run_id"] == search.run_id and tags["genotype"] == search.genotype.short()
    assert float(tags["test_acc"]) > 0 and int(tags["params"]) > 0 and int(tags["flops"]) > 0
    assert tags["eval_run_id"] == readme_runs.model.run_id

    (run,) = client.search_runs([search.experiment_id], filter_string="tags.kind = 'evaluate'")
    assert run.info.status == "FINISHED" and run.info.run_name == "py-eval"
    assert run.data.tags["mlflow.parentRunId"] == search.run_id == run.data.tags["search_run_id"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_acc")] == [1]  # epochs=1
    assert "genotype.json" in {a.path for a in client.list_artifacts(run.info.run_id)}

    import mlflow.pytorch

    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model("models:/sddarts-darts-digits/1")
    logits = model(torch.rand(5, 1, 8, 8))
    assert logits.shape == (5, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("make_source,needle", [
    (lambda tmp, uri: ["--search-run", "0123456789abcdef"], "no MLflow run with id or name '0123456789abcdef' in sqlite"),
    (lambda tmp, uri: ["--search-run", _run_without_genotype(uri)], "has no genotype.json artifact"),
    (lambda tmp, uri: ["--genotype", _file(tmp, '{"normal": [["sep_conv_3x3", 0]], "reduce": []}')], "needs 8 (op, input) pairs"),
    (lambda tmp, uri: ["--genotype", _file(tmp, "{oops")], "genotype is not valid JSON"),
])
def test_bad_genotype_sources_get_clear_errors(make_source, needle, tmp_path, sqlite_uri, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["evaluate", *make_source(tmp_path, sqlite_uri), "--tracking-uri", sqlite_uri])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("sddarts: error: ") and needle in err


def _file(tmp_path, text):
    path = tmp_path / "genotype.json"
    path.write_text(text)
    return str(path)


def _run_without_genotype(uri):
    client = MlflowClient(uri)
    exp = client.create_experiment("other")
    return client.create_run(exp).info.run_id


def test_interrupted_evaluation_resumes_without_logging_an_epoch_twice(ray_session, tmp_path, sqlite_uri):
    """A name with a quote and a space works end to end: storage folder, MLflow lookup, resume."""
    name = "eval it's"
    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "evaluate", "--genotype", "DARTS_V2", *EVAL_TINY,
            "--epochs", "8", "--max-failures", "0", "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(args + ["--name", name], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    snapshot = tmp_path / "runs" / name / "checkpoint_manager_snapshot.json"
    deadline = time.time() + 240
    while not snapshot.exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)  # Ctrl-C with epochs to spare (a tiny epoch takes a fraction of a second)
    assert snapshot.exists(), (tmp_path / "first.log").read_text()[-3000:]
    first.send_signal(signal.SIGINT)  # Ctrl-C once a checkpoint is registered
    assert first.wait(timeout=120) == 130
    client = MlflowClient(sqlite_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sddarts").experiment_id])
    assert run.info.status == "KILLED"
    wait_for_free_cpus()

    second = subprocess.run(args + ["--resume", name], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resumed after epoch" in second.stdout + second.stderr
    (only,) = client.search_runs([run.info.experiment_id])  # the same run, resumed
    assert only.info.run_id == run.info.run_id and only.info.status == "FINISHED"
    assert only.data.tags["sddarts.name"] == name and (tmp_path / "runs" / name).is_dir()
    for key in ("test_acc", "train_loss", "epoch_time_s"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, 9)), key
    wait_for_free_cpus()
