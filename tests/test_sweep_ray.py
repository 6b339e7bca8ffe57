"""Sweeps on a real Ray Tune + OptunaSearch + ASHA, each trial a TorchTrainer search, in real MLflow."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from conftest import parent_and_children, wait_for_free_cpus
from sddarts.platform.cli import main

pytestmark = pytest.mark.ray

TINY = ["--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "32",
        "--workers-per-trial", "1", "--cpus-per-worker", "0.5", "--arch-lr", "0.01"]


def _space(tmp_path: Path) -> str:
    path = tmp_path / "space.yaml"
    path.write_text("sd_weight: {type: float, low: 0.1, high: 2.0, log: true}\n"
                    "teacher_interval: {type: int, low: 1, high: 3}\n"
                    "vote_count: {type: int, low: 1, high: 3}\n")
    return str(path)


def test_seeded_three_trial_sweep_nests_one_child_run_per_trial(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["sweep", *TINY, "--trials", "3", "--seed", "2", "--space-file", _space(tmp_path), "--baseline",
               "--name", "sw", "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "best genotype: N[" in out and "MLflow parent run id:" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "sweep")
    assert parent.info.status == "FINISHED" and parent.data.params["searcher"] == "optuna-tpe"
    assert len(children) == 3
    for child in children:
        assert child.data.tags["kind"] == "search" and child.info.status in ("FINISHED", "KILLED")
        if child.info.status == "KILLED":
            assert child.data.tags["stopped_early"] == "asha"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "derived_val_acc")][0] == 1
        assert "genotype.json" in {a.path for a in client.list_artifacts(child.info.run_id)}
    # --baseline: the enqueued plain-DARTS point (base knobs clipped into the space, vote_count 0)
    assert any(c.data.params["vote_count"] == "0" and c.data.params["teacher_interval"] == "3"
               and c.data.tags["method"] == "darts" for c in children)
    assert any(c.data.tags["method"] == "sd-darts" and int(c.data.params["vote_count"]) > 0 for c in children)
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_config.json", "trials.csv", "genotype.json", "space.json", "plots"} <= parent_files
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text()
    assert len(table.strip().splitlines()) == 4 and "derived_val_acc" in table.splitlines()[0]
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/optimization_history.png" in plots and "plots/knobs.png" in plots


@pytest.mark.parametrize("text,needle", [
    ("vote_cnt: {type: int, low: 1, high: 3}\n", "space: unknown field 'vote_cnt'"),
    ("vote_count: {type: int, low: -1, high: 3}\n", "space.vote_count: vote_count must be >= 0"),
    ("temperature: {type: float, low: 2, high: 1}\n", "space.temperature: low must be < high"),
    ("sd_weight: {type: gaussian}\n", "space.sd_weight: needs type float, int or categorical"),
    ("epochs: {type: int, low: 1, high: 3}\n", "field 'epochs' is fixed for a sweep"),
    ("[not: a mapping\n", "is not valid YAML"),
])
def test_bad_space_file_is_rejected_before_anything_starts(text, needle, tmp_path, monkeypatch, capsys):
    import ray

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "space.yaml"
    path.write_text(text)
    was_running = ray.is_initialized()
    assert main(["sweep", "--space-file", str(path), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("sddarts: error: ") and needle in err
    assert ray.is_initialized() == was_running and not (tmp_path / "m.db").exists()


def test_interrupted_sweep_resumes_without_rerunning_or_duplicating(ray_session, tmp_path, sqlite_uri):
    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    args = [sys.executable, "-m", "sddarts.platform.cli", "sweep", *TINY, "--trials", "3", "--max-concurrent", "1",
            "--no-asha", "--space-file", _space(tmp_path), "--tracking-uri", sqlite_uri,
            "--storage-path", str(tmp_path / "runs")]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(args + ["--name", "sk"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    client = MlflowClient(sqlite_uri)
    deadline = time.time() + 300
    finished = []
    while time.time() < deadline and first.poll() is None:
        exp = client.get_experiment_by_name("sddarts")
        if exp:
            finished = client.search_runs([exp.experiment_id], filter_string="tags.kind = 'search' and attributes.status = 'FINISHED'")
            if finished:
                break
        time.sleep(1)
    assert finished, (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(3)  # let Tune write its experiment state (every second here)
    first.send_signal(signal.SIGKILL)  # the driver dies mid-sweep, with no chance to clean up
    assert first.wait(timeout=60) == -signal.SIGKILL
    wait_for_free_cpus()  # Ray frees the dead job's trials and Train workers

    second = subprocess.run(args + ["--resume", "sk"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    parent, children = parent_and_children(sqlite_uri, "sweep")
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text()
    tune_trials = len(table.strip().splitlines()) - 1
    assert tune_trials >= 3 and len(children) == tune_trials  # every planned trial; one child run each, none duplicated
    assert all(c.info.status == "FINISHED" for c in children)
    for child in children:  # every trial complete, no epoch logged twice
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")] == [1, 2]
    first_done = finished[0].info.run_id
    assert client.get_run(first_done).info.end_time == finished[0].info.end_time  # not rerun
    assert parent.info.status == "FINISHED"
    wait_for_free_cpus()
