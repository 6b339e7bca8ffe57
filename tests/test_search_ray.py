"""Searches through a real TorchTrainer on a real 2-CPU Ray, logged to a real MLflow sqlite store."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from helpers import check_search_records, tiny_search
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
