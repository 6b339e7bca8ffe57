"""Searches through a real TorchTrainer on a real 2-CPU Ray, logged to a real MLflow sqlite store."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from helpers import check_search_records, tiny_search, wait_for_free_cpus
from sddarts.platform.options import RunOptions
from sddarts.platform.jobs import run_search
from sddarts.search_spaces.genotypes import Genotype
from sddarts.search_spaces import genotype_from_json

pytestmark = pytest.mark.ray


def _opts(tmp_path, uri, name):
    return RunOptions(name=name, tracking_uri=uri, storage_path=str(tmp_path / "runs"))


def test_two_worker_second_order_search_keeps_ranks_identical_and_logs_one_run(ray_session, tmp_path, sqlite_uri, capsys):
    """Second order (the unrolled w step on each rank), channels-last; the first order under two
    workers: test_a_killed_worker_recovers_exactly."""
    cfg = tiny_search(num_workers=2, epochs=2, order=2, channels_last=True, sharpness_every=1, sharpness_iters=3,
                      sharpness_batches=1, plot_every=1)
    out = run_search(cfg, _opts(tmp_path, sqlite_uri, "ddp"))
    captured = capsys.readouterr()
    console = captured.out + captured.err
    assert "[ddp] epoch 2/2 " in console and " step " not in console  # short epochs: no progress lines
    assert "FutureWarning" not in console  # DDP's deprecated broadcast_buffers is not passed
    assert out.metrics["epoch"] == 2
    assert out.metrics["replica_drift"] == 0.0  # every rank holds the same w, alpha and BatchNorm statistics
    assert out.metrics["teacher_drift"] == 0.0  # and the same teachers (parameters and buffers)
    assert out.metrics["teachers"] == 2 and out.metrics["sd_loss"] > 0
    assert isinstance(out.genotype, Genotype)

    client = MlflowClient(sqlite_uri)
    runs = client.search_runs([out.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_id == out.run_id
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["kind"] == "search" and run.data.tags["dataset"] == "digits"
    assert run.data.params["vote_count"] == "2" and run.data.params["num_workers"] == "2" and run.data.params["order"] == "2"
    for key in ("val_acc", "derived_val_acc", "discretization_gap", "train_ce", "sd_loss", "agreement", "alpha_entropy",
                "replica_drift", "teacher_drift"):
        assert [m.step for m in client.get_metric_history(out.run_id, key)] == [1, 2], key
    artifacts = {a.path for a in client.list_artifacts(out.run_id)}
    assert {"genotype.json", "alpha.json", "checkpoint"} <= artifacts
    logged = genotype_from_json(Path(client.download_artifacts(out.run_id, "genotype.json", str(tmp_path))).read_text())
    assert logged == out.genotype
    eig = client.get_metric_history(out.run_id, "hessian_eig")  # sharpness every epoch, averaged over workers
    assert [m.step for m in eig] == [1, 2] and all(np.isfinite(m.value) for m in eig)
    plots = {a.path for a in client.list_artifacts(out.run_id, "plots")}
    for name in ("cell_normal.png", "cell_reduce.png", "cell_normal.svg", "alpha_heatmap.png", "alpha_evolution.png",
                 "curves.png", "epoch_001"):  # per-epoch cell pictures with plot_every=1, the rest at the end
        assert f"plots/{name}" in plots, name
    check_search_records(out, "darts", sqlite_uri, tmp_path / "records")  # the pictures not blank, among others


def test_a_search_in_s1_logs_its_genotype_diagnostics_and_pictures(watched_run, tmp_path):
    check_search_records(watched_run.out, "s1", watched_run.uri, tmp_path)


def test_a_bf16_search_finishes_finite_and_logs_the_alpha_steps_sd_term(watched_run):
    client = MlflowClient(watched_run.uri)
    logged = client.get_run(watched_run.out.run_id).data
    assert logged.params["precision"] == "bf16"
    for key in ("train_ce", "val_acc", "hessian_eig", "hessian_eig_residual", "sd_loss", "sd_loss_arch", "agreement_arch",
                "snapshot_kl"):
        assert np.isfinite(logged.metrics[key]), key
    assert abs(logged.metrics["snapshot_kl"]) < 1e-2  # a new teacher is the student it was copied from


def _snapshot(path: Path) -> list[dict]:
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


def test_interrupted_search_resumes_past_a_truncated_and_a_malicious_checkpoint_in_the_same_run(ray_session, tmp_path,
                                                                                               sqlite_uri):
    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "sddarts.platform.commands.cli", "search", "--dataset", "digits", "--C", "4", "--layers", "3",
            "--epochs", "6", "--steps-per-epoch", "3", "--num-workers", "1", "--cpus-per-worker", "0.5",
            "--teacher-interval", "2", "--vote-count", "2", "--tracking-uri", sqlite_uri,
            "--storage-path", str(tmp_path / "runs"), "--max-failures", "0"]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(args + ["--name", "resumable"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    snapshot = tmp_path / "runs" / "resumable" / "checkpoint_manager_snapshot.json"
    deadline = time.time() + 240
    while len(_snapshot(snapshot)) < 3 and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert len(_snapshot(snapshot)) >= 3, (tmp_path / "first.log").read_text()[-3000:]
    first.send_signal(signal.SIGINT)  # Ctrl-C once three epochs are checkpointed
    assert first.wait(timeout=120) == 130
    client = MlflowClient(sqlite_uri)
    exp = client.get_experiment_by_name("sddarts").experiment_id
    (run,) = client.search_runs([exp])
    assert run.info.status == "KILLED"
    newest, older = sorted(_snapshot(snapshot), key=lambda c: c["metrics"]["epoch"])[-1:-3:-1]
    done_before = newest["metrics"]["epoch"]
    assert done_before < 6
    state = snapshot.parent / newest["checkpoint_dir_name"] / "state.pt"
    state.write_bytes(state.read_bytes()[:8])  # the newest checkpoint is cut short (a full disk, a crash)
    marker = tmp_path / "code-ran"
    crafted = snapshot.parent / older["checkpoint_dir_name"] / "state.pt"
    torch.save({"epoch": 1, "payload": _Payload(marker)}, str(crafted))  # someone with write access to the storage
    wait_for_free_cpus()

    second = subprocess.run(args + ["--resume", "resumable"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "is unreadable" in out and f"resumed after epoch {done_before - 2}" in out, out[-3000:]
    assert f"checkpoint {crafted} needs full unpickling" in out and not marker.exists()
    runs = client.search_runs([exp])
    assert len(runs) == 1 and runs[0].info.run_id == run.info.run_id
    assert runs[0].info.status == "FINISHED" and "end_reason" not in runs[0].data.tags
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
    assert steps == [1, 2, 3, 4, 5, 6]  # the planned epochs, none repeated
    wait_for_free_cpus()


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


def test_a_killed_worker_recovers_exactly(ray_session, tmp_path, sqlite_uri):
    """A Train worker SIGKILLed mid-search: the search recovers from its latest checkpoint and ends
    with the alpha and genotype of an uninterrupted run with the same seed (run beside it), each
    epoch logged once."""
    flags = ["--dataset", "digits", "--C", "4", "--layers", "3", "--epochs", "4", "--steps-per-epoch", "4",
             "--batch-size", "32", "--num-workers", "2", "--cpus-per-worker", "0.5", "--teacher-interval", "2",
             "--vote-count", "2", "--seed", "3", "--max-failures", "2", "--tracking-uri", sqlite_uri,
             "--storage-path", str(tmp_path / "runs")]
    env = {**os.environ, "RAY_ADDRESS": ray_session, "PYTHONUNBUFFERED": "1"}
    jobs, logs = {}, {}
    for name in ("uninterrupted", "killed"):  # 2 workers of 0.5 CPU each: both fit on the 2 CPUs
        logs[name] = tmp_path / f"{name}.log"
        jobs[name] = subprocess.Popen([sys.executable, "-m", "sddarts.platform.commands.cli", "search", *flags,
                                       "--name", name], env=env, cwd=tmp_path, stdout=logs[name].open("w"),
                                      stderr=subprocess.STDOUT)
    snapshot = tmp_path / "runs" / "killed" / "checkpoint_manager_snapshot.json"
    deadline = time.time() + 240
    while len(_snapshot(snapshot)) < 2 and time.time() < deadline and jobs["killed"].poll() is None:
        time.sleep(0.1)
    workers = _train_workers("killed")
    assert len(_snapshot(snapshot)) >= 2 and len(workers) == 2, logs["killed"].read_text()[-3000:]
    workers[-1].send_signal(signal.SIGKILL)  # one worker dies after epoch 2's checkpoint
    for name, job in jobs.items():
        assert job.wait(timeout=300) == 0, logs[name].read_text()[-3000:]
    assert "[killed] resumed after epoch" in logs["killed"].read_text()  # the worker group restarted
    assert "resumed after epoch" not in logs["uninterrupted"].read_text()

    client = MlflowClient(sqlite_uri)
    exp = client.get_experiment_by_name("sddarts").experiment_id
    alphas = {}
    for name in ("uninterrupted", "killed"):
        (run,) = client.search_runs([exp], filter_string=f"tags.`sddarts.name` = '{name}'")
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1, 2, 3, 4], name
        alphas[name] = json.loads(Path(client.download_artifacts(run.info.run_id, "alpha.json", str(tmp_path / name))).read_text())
        alphas[name]["genotype"] = run.data.tags["genotype"]
    assert alphas["killed"] == alphas["uninterrupted"]  # exactly: every float, and the genotype
    wait_for_free_cpus()


def test_a_worker_side_data_error_fails_on_its_first_attempt(ray_session, tmp_path, sqlite_uri, monkeypatch):
    attempts = tmp_path / "attempts.log"
    monkeypatch.setenv("SDDARTS_ATTEMPT_LOG", str(attempts))  # run_search hands it to its workers
    cfg = tiny_search(dataset="cifar10", data_dir=str(tmp_path / "no-cifar-here"), epochs=1, max_failures=2)
    from sddarts.search_spaces.errors import DataError

    with pytest.raises(DataError, match="has no cifar10 batches"):
        run_search(cfg, _opts(tmp_path, sqlite_uri, "fatal"))
    assert attempts.read_text().splitlines() == ["fatal rank 0"]  # max_failures=2, yet one attempt
    client = MlflowClient(sqlite_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sddarts").experiment_id])
    assert run.info.status == "FAILED" and "has no cifar10 batches" in run.data.tags["error"]
    assert "DataError" in run.data.tags["error"]


def test_a_long_epoch_shows_its_progress_and_the_run_its_system_metrics(watched_run):
    lines = [line for line in watched_run.console.splitlines() if "[watched] epoch" in line and " step " in line]
    assert len(lines) == 4, lines  # steps 1 and 2 of 3 in each of the 2 epochs (the epoch's own line ends it)
    for line in lines:
        found = re.search(r"epoch (\d)/2  step (\d)/3 \(\d+%\)  (\d+) img/s  epoch ETA (\d+s)  run ETA (\d+s|\d+m\d\ds)",
                          line)
        assert found, line
    run = MlflowClient(watched_run.uri).get_run(watched_run.out.run_id)
    assert run.data.tags["sddarts.progress"] == "epoch 2/2 done"
    system = {k for k in run.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system, system


def test_a_run_without_ray_datasets_starts_no_dataset_manager(watched_run):
    """``workers.ray_compat.torch_trainer_class``: Ray 2.60 starts a DatasetManager actor per run.
    The PlacementGroupCleaner stays where the driver lives on (``run_search``'s default; the CLI's
    runs leave it out: the nb201 test in test_spaces_ray.py)."""
    from ray.util.state import list_actors

    assert list_actors(filters=[("class_name", "=", "RayTrainWorker")], limit=10000)  # the State API sees the runs
    assert list_actors(filters=[("class_name", "=", "PlacementGroupCleaner")], limit=10000)
    assert list_actors(filters=[("class_name", "=", "DatasetManager")], limit=10000) == []
