"""What a search survives, on one shared scenario: two CLI searches at once on one machine, one
starting a Ray of its own beside the session's, which the other joins; in that other a Train
worker is SIGKILLed (Ray Train restarts the group
from the latest checkpoint), then the command is Ctrl-C'ed, its newest checkpoint cut short and an
older one replaced by one whose unpickling runs code; ``--resume`` then finishes it. It must end
with exactly the alpha and genotype of the other search, which nothing interrupted.
(A full disk while a checkpoint is written: test_faults_ray.py.)"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient

from helpers import ensure_ray, wait_for, wait_for_free_cpus

pytestmark = pytest.mark.ray

FLAGS = ["--dataset", "digits", "--C", "4", "--layers", "3", "--epochs", "5", "--steps-per-epoch", "3", "--sharpness-every", "0",
         "--batch-size", "32", "--num-workers", "2", "--cpus-per-worker", "0.5", "--teacher-interval", "2",
         "--vote-count", "2", "--seed", "3", "--max-failures", "2"]
CLI = [sys.executable, "-m", "sddarts.platform.commands.cli", "search"]


def _snapshot(path: Path) -> list[dict]:
    """The checkpoints Ray Train has recorded for a run so far."""
    try:
        return json.loads(path.read_text()).get("checkpoint_results", [])
    except (OSError, ValueError):
        return []


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _train_workers(run: str) -> list:
    """The live Train worker processes of Train run ``run`` (Ray Train runs each in the run's own
    working folder, ``.../<run>``)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any("RayTrainWorker" in part for part in (p.info["cmdline"] or [])) and p.cwd().endswith(f"/{run}"):
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    address = ensure_ray()
    tmp = tmp_path_factory.mktemp("recovery")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    flags = [*FLAGS, "--tracking-uri", uri, "--storage-path", str(tmp / "runs")]
    own_ray = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # the command starts a local Ray
    own_ray["PYTHONUNBUFFERED"] = "1"
    joins = {**own_ray, "RAY_ADDRESS": address}
    wait_for_free_cpus()
    jobs, logs = {}, {}
    for name, env in (("uninterrupted", own_ray), ("killed", joins)):
        logs[name] = tmp / f"{name}.log"
        jobs[name] = subprocess.Popen([*CLI, *flags, "--name", name], env=env, cwd=tmp,
                                      stdout=logs[name].open("w"), stderr=subprocess.STDOUT)
    snapshot = tmp / "runs" / "killed" / "checkpoint_manager_snapshot.json"
    alive = lambda: jobs["killed"].poll() is None  # noqa: E731
    wait_for(lambda: len(_snapshot(snapshot)) >= 2 or not alive(), 240, "epoch 2's checkpoint", logs["killed"], 0.1)
    workers = _train_workers("killed")
    assert len(_snapshot(snapshot)) >= 2 and len(workers) == 2, logs["killed"].read_text()[-3000:]
    workers[-1].send_signal(signal.SIGKILL)  # one worker dies after epoch 2's checkpoint: the group restarts
    restarted = lambda: "[killed] resumed after epoch" in logs["killed"].read_text()  # noqa: E731
    wait_for(lambda: (restarted() and len(_snapshot(snapshot)) >= 3) or not alive(), 240, "a checkpoint after the restart",
             logs["killed"], 0.1)
    jobs["killed"].send_signal(signal.SIGINT)  # Ctrl-C once an epoch after the restart is checkpointed
    killed_rc = jobs["killed"].wait(timeout=120)
    assert jobs["uninterrupted"].wait(timeout=300) == 0, logs["uninterrupted"].read_text()[-3000:]

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sddarts").experiment_id
    (interrupted,) = client.search_runs([exp], filter_string="tags.`sddarts.name` = 'killed'")
    newest, older = sorted(_snapshot(snapshot), key=lambda c: c["metrics"]["epoch"])[-1:-3:-1]
    state = snapshot.parent / newest["checkpoint_dir_name"] / "state.pt"
    state.write_bytes(state.read_bytes()[:8])  # the newest checkpoint is cut short (a full disk, a crash)
    marker = tmp / "code-ran"
    crafted = snapshot.parent / older["checkpoint_dir_name"] / "state.pt"
    torch.save({"epoch": 1, "payload": _Payload(marker)}, str(crafted))  # someone with write access to the storage
    wait_for_free_cpus()
    resumed = subprocess.run([*CLI, *flags, "--resume", "killed"], env=joins, cwd=tmp,
                             capture_output=True, text=True, timeout=300)
    wait_for_free_cpus()
    return SimpleNamespace(dir=tmp, uri=uri, client=client, exp=exp, logs={k: v.read_text() for k, v in logs.items()},
                           killed_rc=killed_rc, interrupted=interrupted, done_before=newest["metrics"]["epoch"],
                           crafted=crafted, marker=marker, resumed=resumed)


def _run(r, name):
    (run,) = r.client.search_runs([r.exp], filter_string=f"tags.`sddarts.name` = '{name}'")
    return run


def test_two_searches_at_once_on_one_machine_one_with_a_ray_of_its_own(recovered):
    out = recovered.logs["uninterrupted"]
    assert "search uninterrupted finished" in out and "Traceback" not in out, out[-3000:]
    for name, log in recovered.logs.items():
        assert "Found multiple active Ray instances" not in log, (name, log[-3000:])
    assert _run(recovered, "uninterrupted").info.status == "FINISHED"


def test_a_killed_worker_recovers_and_a_ctrl_c_leaves_the_run_killed(recovered):
    log = recovered.logs["killed"]
    assert "[killed] resumed after epoch" in log  # the worker group restarted from its latest checkpoint
    assert "resumed after epoch" not in recovered.logs["uninterrupted"]
    assert recovered.killed_rc == 130, log[-3000:]
    assert recovered.interrupted.info.status == "KILLED" and recovered.done_before < 5


def test_resume_skips_a_truncated_and_a_code_running_checkpoint_and_ends_exactly_as_uninterrupted(recovered, tmp_path):
    out = recovered.resumed.stdout + recovered.resumed.stderr
    assert recovered.resumed.returncode == 0, out[-3000:]
    assert "is unreadable" in out and f"resumed after epoch {recovered.done_before - 2}" in out, out[-3000:]
    assert f"checkpoint {recovered.crafted} needs full unpickling" in out and not recovered.marker.exists()
    client, alphas = recovered.client, {}
    for name in ("uninterrupted", "killed"):
        run = _run(recovered, name)
        assert run.info.status == "FINISHED" and "end_reason" not in run.data.tags
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1, 2, 3, 4, 5], name
        alphas[name] = json.loads(Path(client.download_artifacts(run.info.run_id, "alpha.json",
                                                                 str(tmp_path / name))).read_text())
        alphas[name]["genotype"] = run.data.tags["genotype"]
    assert _run(recovered, "killed").info.run_id == recovered.interrupted.info.run_id  # the same run, resumed
    assert alphas["killed"] == alphas["uninterrupted"]  # exactly: every float, and the genotype
