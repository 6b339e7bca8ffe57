"""Sweeps on a real Ray Tune + OptunaSearch + ASHA, each trial a TorchTrainer search, in real MLflow."""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient

from helpers import parent_and_children, wait_for, wait_for_free_cpus
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


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory):
    """One ASHA sweep of 4 trials (the plain-DARTS baseline first), two at a time, as a CLI
    process SIGKILLed once a trial has finished, then resumed with ``--resume``: the records of
    every trial and the resume itself are checked on the same sweep."""
    from helpers import ensure_ray

    address = ensure_ray()
    tmp = tmp_path_factory.mktemp("asha")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {**os.environ, "RAY_ADDRESS": address, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1",
           "SDDARTS_HEARTBEAT_S": "1"}
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "sweep", *TINY, "--epochs", "3", "--trials", "4",
            "--seed", "2", "--max-concurrent", "2", "--baseline", "--proxy-epochs", "0", "--space-file", _space(tmp),
            "--tracking-uri", uri, "--storage-path", str(tmp / "runs")]
    wait_for_free_cpus()
    first = subprocess.Popen(args + ["--name", "sk"], env=env, cwd=tmp, stdout=(tmp / "first.log").open("w"),
                             stderr=subprocess.STDOUT)
    client = MlflowClient(uri)
    deadline = time.time() + 300
    finished = []
    while time.time() < deadline and first.poll() is None:
        exp = client.get_experiment_by_name("sddarts")
        if exp:
            finished = client.search_runs([exp.experiment_id], filter_string="tags.kind = 'search' and attributes.status = 'FINISHED'")
            if finished:
                break
        time.sleep(1)
    assert finished, (tmp / "first.log").read_text()[-3000:]
    time.sleep(3)  # let Tune write its experiment state (every second here)
    first.send_signal(signal.SIGKILL)  # the driver dies mid-sweep, with no chance to clean up
    killed_at = time.time()
    assert first.wait(timeout=60) == -signal.SIGKILL
    wait_for_free_cpus()  # Ray frees the dead job's trials and Train workers
    time.sleep(max(0.0, killed_at + 4 - time.time()))  # its last heartbeat is over 3 beats old
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("SDDARTS_HEARTBEAT_S", "1")  # the interval the driver beat at
        assert main(["runs", "--tracking-uri", uri, "--kind", "sweep", "--json"]) == 0
    second = subprocess.run(args + ["--resume", "sk"], env=env, cwd=tmp, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    wait_for_free_cpus(timeout=60)  # no placement group outlives a trial ASHA stopped (platform/compat)
    return SimpleNamespace(dir=tmp, uri=uri, finished=finished, listed=json.loads(printed.getvalue()), out=second.stdout)


def test_a_sigkilled_sweep_is_seen_as_such_and_resumes_comparing_trials_at_the_same_epoch(asha_sweep):
    (dead,) = asha_sweep.listed  # listed between the kill and the resume
    assert dead["status"] == "DRIVER-GONE" and dead["driver_silent_s"] > 3  # recognisable in the store
    client = MlflowClient(asha_sweep.uri)
    parent, children = parent_and_children(asha_sweep.uri, "sweep")
    table = Path(client.download_artifacts(parent.info.run_id, "trials.csv", str(asha_sweep.dir))).read_text()
    tune_trials = len(table.strip().splitlines()) - 1
    assert tune_trials >= 4 and len(children) == tune_trials  # every planned trial; one child run each, none duplicated
    for child in children:  # no epoch logged twice; ASHA stops only at its rung, the search's epoch 2
        epochs = [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")]
        if child.info.status == "KILLED":
            assert child.data.tags["stopped_at_epoch"] == "2" and epochs[:2] == [1, 2]
        else:
            assert child.info.status == "FINISHED" and epochs == [1, 2, 3]
    first_done = asha_sweep.finished[0]
    assert client.get_run(first_done.info.run_id).info.end_time == first_done.info.end_time  # not rerun
    assert parent.info.status == "FINISHED"


def test_asha_sweep_keeps_every_trials_records_and_ranks_only_completed_trials(asha_sweep, tmp_path):
    out, uri = asha_sweep.out, asha_sweep.uri
    assert "best genotype: N[" in out and "MLflow parent run id:" in out
    client = MlflowClient(uri)
    parent, children = parent_and_children(uri, "sweep")
    shown = re.findall(r"\[sk\] (\d+) of 4 trials done", out)
    assert shown and int(shown[-1]) == len(children)  # the trials done before the kill count too
    assert parent.info.status == "FINISHED" and parent.data.params["searcher"] == "optuna-tpe"
    assert parent.data.params["scheduler"] == "asha" and parent.data.params["grace_period"] == "2"
    assert len(children) >= 4
    for child in children:  # finished or stopped by ASHA, every trial holds a search's records
        run_id = child.info.run_id
        epochs = [m.step for m in client.get_metric_history(run_id, "derived_val_acc")]
        assert child.data.tags["kind"] == "search" and child.info.status in ("FINISHED", "KILLED")
        assert child.data.params["max_failures"] == "0"  # Tune restarts a trial; its Train run restarts nothing
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
    assert len(table) == len(children) + 1 and "status" in table[0] and "derived_val_acc" in table[0]
    statuses = [c.info.status for c in children]
    assert sum(",completed," in row for row in table[1:]) == statuses.count("FINISHED")
    assert sum(",stopped," in row for row in table[1:]) == statuses.count("KILLED")


def test_a_failed_copy_of_tunes_state_is_one_line_and_the_interrupted_proxy_sweep_still_ranks_and_registers(
        ray_session, tmp_path, sqlite_uri):
    """A sweep with a proxy retrain of each trial and ``--evaluate-best``, Ctrl-C'ed right after a
    failed copy of Tune's state, then resumed: the state a resume reads is the newest, and the
    resumed sweep ranks its trials by proxy_acc and registers the evaluated best as the champion."""
    from sddarts.platform.compat.tune_state_saves import state_files

    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "sweep", *TINY, "--trials", "2", "--seed", "1",
            "--no-asha", "--proxy-epochs", "1", "--proxy-C", "4", "--evaluate-best",
            "--tracking-uri", sqlite_uri, "--storage-path", str(runs)]
    log_path = tmp_path / "first.log"
    first = subprocess.Popen(args + ["--name", "px"], env=env, cwd=tmp_path, stdout=log_path.open("w"),
                             stderr=subprocess.STDOUT)
    import ray

    context = ray.get_runtime_context()  # this test's Ray (another may run beside it)
    session = Path(context.get_temp_dir()) / context.get_session_name()
    (staging,) = wait_for(lambda: list(session.glob("artifacts/*/px/driver_artifacts")), 120, "staging folder", log_path)
    wait_for(lambda: (runs / "px").is_dir(), 60, "experiment folder", log_path)
    # A real copy failure in Ray's syncer: a file on storage where the staging folder holds a folder
    (runs / "px" / "blocker").write_text("a file")
    (staging / "blocker").mkdir()
    (staging / "blocker" / "x").write_text("x")
    warning = "sddarts: warning: copying Tune's experiment state to storage failed (FileExistsError"
    wait_for(lambda: warning in log_path.read_text(), 120, "warning line", log_path)
    first.send_signal(signal.SIGINT)  # Ctrl-C right after the failure: Tune's own last copy fails as well
    assert first.wait(timeout=180) == 130
    log = log_path.read_text()
    assert "experiment_state.py" not in log and "syncer.py" not in log, log[-3000:]  # no traceback of a save
    failures = [line for line in log.splitlines() if "experiment state" in line and "fail" in line]
    assert failures and all(line.startswith("sddarts: warning: copying Tune's") for line in failures), log[-3000:]
    staged, stored = state_files(str(staging)), state_files(str(runs / "px"))
    assert staged and all(stored.get(k) == v for k, v in staged.items())  # what a resume reads is the newest state

    second = subprocess.run(args + ["--resume", "px"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = second.stdout
    assert second.returncode == 0, out[-3000:] + second.stderr[-3000:]
    assert "ranked by proxy_acc" in out
    assert re.search(r"\[px\] 1 of 2 trials done \(50%\) in \S+, ETA \S+:", log + out)  # in whichever driver ran it
    assert "[px] 2 of 2 trials done (100%) in " in out
    assert "champion: models:/sddarts-darts-digits@champion" in out
    champion = MlflowClient(sqlite_uri).get_model_version_by_alias("sddarts-darts-digits", "champion")
    exported = tmp_path / "champion.pt"
    assert main(["export", "models:/sddarts-darts-digits@champion", "--format", "state-dict", "--out", str(exported),
                 "--tracking-uri", sqlite_uri]) == 0
    assert exported.is_file() and champion.tags["search_run_id"]
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "sweep")
    assert parent.info.status == "FINISHED"
    searches = [c for c in children if c.data.tags["kind"] == "search"]
    assert len(searches) == 2
    proxy_acc = {}
    for search in searches:
        assert search.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(search.info.run_id, "val_acc")] == [1, 2]  # none twice
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
    wait_for_free_cpus()


def test_a_ctrl_c_during_a_fit_whose_trials_all_run_is_told_from_a_fit_that_ended(ray_session, tmp_path):
    """``compat.tune_interrupts``: Tune returns the running trials TERMINATED, like finished ones.
    (A fit that ends by itself is every other sweep here.)"""
    import threading

    import ray.tune

    from sddarts.platform.compat.tune_interrupts import fit_noting_interrupt

    started = tmp_path / "started"

    def sleeper(config):  # defined here, so Ray ships it by value
        Path(config["flag"]).touch()
        time.sleep(120)

    tuner = ray.tune.Tuner(ray.tune.with_resources(sleeper, {"CPU": 0.01}), param_space={"flag": str(started)},
                           tune_config=ray.tune.TuneConfig(num_samples=2),
                           run_config=ray.tune.RunConfig(name="ctrl-c", storage_path=str(tmp_path / "runs"), verbose=0))

    def ctrl_c():  # once both trials run (Tune's handler is in place by then)
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    t0 = time.time()
    results, interrupted = fit_noting_interrupt(tuner.fit)
    assert interrupted and time.time() - t0 < 100
    assert results.num_terminated + results.num_errors == 2  # why the results alone cannot tell
    wait_for_free_cpus()
