"""Sweeps on a real Ray Tune + OptunaSearch + ASHA, each trial a TorchTrainer search, in real MLflow."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from helpers import parent_and_children, wait_for_free_cpus
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray

TINY = ["--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "32",
        "--workers-per-trial", "1", "--cpus-per-worker", "0.5", "--arch-lr", "0.01"]


def _space(tmp_path: Path) -> str:
    path = tmp_path / "space.yaml"
    path.write_text("sd_weight: {type: float, low: 0.1, high: 2.0, log: true}\n"
                    "teacher_interval: {type: int, low: 1, high: 3}\n"
                    "vote_count: {type: int, low: 1, high: 3}\n")
    return str(path)


RECORDS = {"genotype.json", "genotype.py", "alpha.json", "checkpoint/state.pt", "plots/cell_normal.png", "plots/cell_reduce.png",
           "plots/alpha_heatmap.png", "plots/alpha_evolution.png", "plots/curves.png"}


def _artifacts(client, run_id, path=None) -> set[str]:
    """Every artifact file of a run, recursively."""
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, a.path) if a.is_dir else {a.path}
    return out


def test_asha_sweep_keeps_every_trials_records_and_ranks_only_completed_trials(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["sweep", *TINY, "--epochs", "3", "--trials", "4", "--seed", "2", "--space-file", _space(tmp_path),
               "--baseline", "--proxy-epochs", "0", "--name", "sw", "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "best genotype: N[" in out and "MLflow parent run id:" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "sweep")
    assert parent.info.status == "FINISHED" and parent.data.params["searcher"] == "optuna-tpe"
    assert parent.data.params["scheduler"] == "asha" and parent.data.params["grace_period"] == "2"
    assert len(children) == 4
    for child in children:  # finished or stopped by ASHA, every trial holds a search's records
        run_id = child.info.run_id
        epochs = [m.step for m in client.get_metric_history(run_id, "derived_val_acc")]
        assert child.data.tags["kind"] == "search" and child.info.status in ("FINISHED", "KILLED")
        assert RECORDS <= _artifacts(client, run_id), (child.info.status, _artifacts(client, run_id))
        saved = torch.load(client.download_artifacts(run_id, "checkpoint/state.pt", str(tmp_path / run_id)),
                           weights_only=False)  # the records are those of the newest checkpoint
        assert int(client.get_run(run_id).data.tags["records_epoch"]) == saved["epoch"] >= 2
        if child.info.status == "KILLED":  # stopped at ASHA's rung (epoch 2), never at its last epoch
            tags = client.get_run(run_id).data.tags
            assert tags["stopped_early"] == "asha" and tags["stopped_at_epoch"] == "2" and epochs[:2] == [1, 2]
        else:
            assert epochs == [1, 2, 3] and saved["epoch"] == 3
    best = client.get_run(parent.data.tags["best_run_id"])
    assert best.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(best.info.run_id, "derived_val_acc")] == [1, 2, 3]
    # --baseline: the enqueued plain-DARTS point, in a space whose logged form holds it
    assert any(c.data.params["vote_count"] == "0" and c.data.tags["method"] == "darts" for c in children)
    space = json.loads(Path(client.download_artifacts(parent.info.run_id, "space.json", str(tmp_path))).read_text())
    assert space["vote_count"]["low"] == 0
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_config.json", "trials.csv", "genotype.json", "space.json", "plots"} <= parent_files
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text().splitlines()
    assert len(table) == 5 and "status" in table[0] and "derived_val_acc" in table[0]
    statuses = [c.info.status for c in children]
    assert sum(",completed," in row for row in table[1:]) == statuses.count("FINISHED")
    assert sum(",stopped," in row for row in table[1:]) == statuses.count("KILLED")


def test_proxy_retrain_ranks_trials_and_the_evaluated_best_is_the_champion(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["sweep", *TINY, "--trials", "2", "--seed", "1", "--no-asha", "--proxy-epochs", "1", "--proxy-C", "4",
               "--evaluate-best", "--name", "px", "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "ranked by proxy_acc" in out
    assert re.search(r"\[px\] 1 of 2 trials done \(50%\) in \S+, ETA \S+:", out)
    assert "[px] 2 of 2 trials done (100%) in " in out
    assert "champion: models:/sddarts-darts-digits@champion" in out
    champion = MlflowClient(sqlite_uri).get_model_version_by_alias("sddarts-darts-digits", "champion")
    exported = tmp_path / "champion.pt"
    assert main(["export", "models:/sddarts-darts-digits@champion", "--format", "state-dict", "--out", str(exported),
                 "--tracking-uri", sqlite_uri]) == 0
    assert exported.is_file() and champion.tags["search_run_id"]
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "sweep")
    searches = [c for c in children if c.data.tags["kind"] == "search"]
    assert len(searches) == 2
    proxy_acc = {}
    for search in searches:
        exp = search.info.experiment_id
        children_of = client.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{search.info.run_id}'")
        (proxy,) = [r for r in children_of if r.data.tags["kind"] == "proxy"]  # (the best also has its evaluation)
        assert proxy.data.tags["kind"] == "proxy" and proxy.info.status == "FINISHED"
        assert "val_acc" in proxy.data.metrics and "test_acc" not in proxy.data.metrics  # measured on the held-out split
        proxy_acc[search.data.tags["trial_id"]] = search.data.metrics["proxy_acc"]
        assert search.data.metrics["proxy_acc"] == proxy.data.metrics["val_acc"]
    best = json.loads(Path(client.download_artifacts(parent.info.run_id, "best_config.json", str(tmp_path))).read_text())
    assert proxy_acc[best["trial_id"]] == best["proxy_acc"] == max(proxy_acc.values())  # (ties: any of them)
    assert parent.data.metrics["best_proxy_acc"] == max(proxy_acc.values())


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


def test_interrupted_asha_sweep_resumes_comparing_trials_at_the_same_epoch(ray_session, tmp_path, sqlite_uri,
                                                                          monkeypatch, capsys):
    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1",
           "SDDARTS_HEARTBEAT_S": "1"}
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "sweep", *TINY, "--epochs", "3", "--trials", "3",
            "--max-concurrent", "1", "--proxy-epochs", "0", "--space-file", _space(tmp_path), "--tracking-uri", sqlite_uri,
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
    monkeypatch.setenv("SDDARTS_HEARTBEAT_S", "1")
    time.sleep(4)
    capsys.readouterr()
    assert main(["runs", "--tracking-uri", sqlite_uri, "--kind", "sweep", "--json"]) == 0
    (dead,) = json.loads(capsys.readouterr().out)
    assert dead["status"] == "DRIVER-GONE" and dead["driver_silent_s"] > 3  # recognisable in the store
    monkeypatch.delenv("SDDARTS_HEARTBEAT_S")

    second = subprocess.run(args + ["--resume", "sk"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    parent, children = parent_and_children(sqlite_uri, "sweep")
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(tmp_path))).read_text()
    tune_trials = len(table.strip().splitlines()) - 1
    assert tune_trials >= 3 and len(children) == tune_trials  # every planned trial; one child run each, none duplicated
    for child in children:  # no epoch logged twice; ASHA stops only at its rung, the search's epoch 2
        epochs = [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")]
        if child.info.status == "KILLED":
            assert child.data.tags["stopped_at_epoch"] == "2" and epochs[:2] == [1, 2]
        else:
            assert child.info.status == "FINISHED" and epochs == [1, 2, 3]
    first_done = finished[0].info.run_id
    assert client.get_run(first_done).info.end_time == finished[0].info.end_time  # not rerun
    assert parent.info.status == "FINISHED"
    wait_for_free_cpus()


def _wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f}s:\n" + log.read_text()[-3000:])


def test_a_failed_copy_of_tunes_state_is_one_line_and_the_interrupted_sweep_still_resumes(ray_session, tmp_path,
                                                                                         sqlite_uri):
    from sddarts.platform.compat.tune_state_saves import state_files

    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "sweep", *TINY, "--trials", "2", "--max-concurrent", "1",
            "--no-asha", "--proxy-epochs", "0", "--space-file", _space(tmp_path), "--tracking-uri", sqlite_uri,
            "--storage-path", str(runs)]
    log_path = tmp_path / "first.log"
    first = subprocess.Popen(args + ["--name", "sv"], env=env, cwd=tmp_path, stdout=log_path.open("w"),
                             stderr=subprocess.STDOUT)
    import ray

    context = ray.get_runtime_context()  # this test's Ray (another may run beside it)
    session = Path(context.get_temp_dir()) / context.get_session_name()
    (staging,) = _wait_for(lambda: list(session.glob("artifacts/*/sv/driver_artifacts")), 120, "staging folder", log_path)
    _wait_for(lambda: (runs / "sv").is_dir(), 60, "experiment folder", log_path)
    # A real copy failure in Ray's syncer: a file on storage where the staging folder holds a folder
    (runs / "sv" / "blocker").write_text("a file")
    (staging / "blocker").mkdir()
    (staging / "blocker" / "x").write_text("x")
    warning = "sddarts: warning: copying Tune's experiment state to storage failed (FileExistsError"
    _wait_for(lambda: warning in log_path.read_text(), 120, "warning line", log_path)
    first.send_signal(signal.SIGINT)  # Ctrl-C right after the failure: Tune's own last copy fails as well
    assert first.wait(timeout=180) == 130
    log = log_path.read_text()
    assert "experiment_state.py" not in log and "syncer.py" not in log, log[-3000:]  # no traceback of a save
    failures = [line for line in log.splitlines() if "experiment state" in line and "fail" in line]
    assert failures and all(line.startswith("sddarts: warning: copying Tune's") for line in failures), log[-3000:]
    staged, stored = state_files(str(staging)), state_files(str(runs / "sv"))
    assert staged and all(stored.get(k) == v for k, v in staged.items())  # what a resume reads is the newest state

    second = subprocess.run(args + ["--resume", "sv"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    parent, children = parent_and_children(sqlite_uri, "sweep")
    assert parent.info.status == "FINISHED" and len(children) == 2
    client = MlflowClient(sqlite_uri)
    for child in children:
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")] == [1, 2]
    wait_for_free_cpus()
