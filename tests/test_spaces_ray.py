"""Spaces end to end: an S4 search, DARTS-ES on a real run in S2, and an nb201 search with
NAS-Bench-201's figures (from an archive the test writes), its evaluation and registry. What every
search logs (``helpers.check_search_records``) is checked on s4 and nb201 here, on darts (the
2-worker search) and s1 (``watched_run``) in test_search_ray.py; s3 runs in the comparison."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient

from dataset_files import every_cell, write_nats_archive
from helpers import check_search_records, tiny_search
from sddarts.platform.commands.cli import main
from sddarts.platform.options import RunOptions
from sddarts.platform.jobs import run_search
from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.data.nb201_bench import FIGURES

pytestmark = pytest.mark.ray


def _search(space, tmp_path, uri, **overrides):
    cfg = tiny_search(space=space, layers=1 if space == "nb201" else 3, **overrides)
    return run_search(cfg, RunOptions(name=f"space-{space}", tracking_uri=uri, storage_path=str(tmp_path / "runs")))


def _artifact(client, run_id, path, tmp_path):
    return Path(client.download_artifacts(run_id, path, str(tmp_path)))


def test_a_search_in_s4_logs_its_genotype_diagnostics_and_pictures(ray_session, tmp_path, sqlite_uri):
    """RobustDARTS' S4, whose ``noise`` op makes a teacher differ from the student it was copied
    from (so not the shared bf16 run, which checks that it does not)."""
    check_search_records(_search("s4", tmp_path, sqlite_uri, epochs=1), "s4", sqlite_uri, tmp_path)


def test_darts_es_stops_a_real_search_and_returns_the_look_back_genotype(ray_session, tmp_path, sqlite_uri):
    """A constructed case: window 1, look-back 1, start epoch 0 and a factor of 1e-6 stop the search
    at its second eigenvalue report whenever both are positive, so epoch 1's genotype is returned."""
    out = _search("s2", tmp_path, sqlite_uri, epochs=4, sharpness_every=1, sharpness_iters=3, sharpness_batches=1,
                  early_stop="sharpness", es_window=1, es_factor=1e-6, es_start_epoch=0, es_lookback=1)
    client = MlflowClient(sqlite_uri)
    eig = [m.value for m in sorted(client.get_metric_history(out.run_id, "hessian_eig"), key=lambda m: m.step)]
    assert len(eig) == 2 and eig[0] > 0 and eig[1] > 0  # stopped after the second report, not at epoch 4
    assert out.metrics["epoch"] == 2 and out.metrics["es_stopped_epoch"] == 2 and out.metrics["es_returned_epoch"] == 1
    run = client.get_run(out.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["es_returned_epoch"] == "1" and run.data.tags["es_stopped_epoch"] == "2"
    per_epoch = json.loads(_artifact(client, out.run_id, "genotypes.json", tmp_path).read_text())
    returned = genotype_from_json(_artifact(client, out.run_id, "genotype.json", tmp_path).read_text())
    assert returned.short() == per_epoch["1"] == out.genotype.short() == run.data.tags["genotype"]


def test_an_nb201_search_logs_its_benchmark_figures_and_is_described_evaluated_and_registered(ray_session, tmp_path,
                                                                                             sqlite_uri, capsys):
    """An nb201 search that reads NAS-Bench-201's figures of each derived cell from an archive the
    test writes; then ``describe``, ``evaluate`` and the registered model. Both are CLI runs: they
    start Train workers but no PlacementGroupCleaner (``RunOptions.placement_group_cleaner``)."""
    from ray.util.state import list_actors

    def actors(name: str) -> int:
        return len(list_actors(filters=[("class_name", "=", name)], limit=10000))

    before = actors("RayTrainWorker"), actors("PlacementGroupCleaner")
    expected = write_nats_archive(tmp_path / "nats", every_cell(), records=40)
    rc = main(["search", "--space", "nb201", "--C", "4", "--layers", "1", "--epochs", "2", "--steps-per-epoch", "3",
               "--batch-size", "32", "--num-workers", "1", "--cpus-per-worker", "0.5", "--teacher-interval", "1",
               "--vote-count", "2", "--nb201-bench", str(tmp_path / "nats"), "--name", "space-nb201",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    assert rc == 0, capsys.readouterr().out[-3000:]
    client = MlflowClient(sqlite_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sddarts").experiment_id],
                                filter_string="attributes.run_name = 'space-nb201'")
    genotype = genotype_from_json(_artifact(client, run.info.run_id, "genotype.json", tmp_path / "g").read_text())
    search = SimpleNamespace(run_id=run.info.run_id, genotype=genotype)
    check_search_records(search, "nb201", sqlite_uri, tmp_path / "r")
    assert run.data.params["nb201_bench"] == str((tmp_path / "nats").resolve())
    for key in FIGURES:  # the benchmark's figures of the cell derived at each epoch
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2]
        assert history[-1].value == pytest.approx(expected[genotype.arch_str()][key])
    assert len(json.loads(_artifact(client, run.info.run_id, "genotypes.json", tmp_path / "g").read_text())) == 2

    capsys.readouterr()
    assert main(["describe", search.run_id, "--tracking-uri", sqlite_uri]) == 0
    out = capsys.readouterr().out
    assert f"genotype (nb201): {search.genotype.arch_str()}" in out and "cifar10-nb201" in out
    rc = main(["evaluate", "--search-run", search.run_id, "--C", "4", "--layers", "1", "--epochs", "1",
               "--steps-per-epoch", "3", "--num-workers", "1", "--cpus-per-worker", "0.5", "--name", "nb-eval",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
    assert "registered: models:/sddarts-nb201-digits/1" in out
    assert (actors("RayTrainWorker"), actors("PlacementGroupCleaner")) == (before[0] + 2, before[1])
    assert client.get_model_version("sddarts-nb201-digits", "1").tags["genotype"] == search.genotype.arch_str()
    import mlflow.pytorch

    mlflow.set_tracking_uri(sqlite_uri)
    assert mlflow.pytorch.load_model("models:/sddarts-nb201-digits/1")(torch.randn(3, 1, 8, 8)).shape == (3, 10)
