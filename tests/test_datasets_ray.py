"""A search, a proxy sweep trial and an evaluation on an image folder the test writes, and an nb201
search that logs NAS-Bench-201's figures of each derived cell from an archive the test writes."""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import parent_and_children
from dataset_files import every_cell, write_image_folder, write_nats_archive
from sddarts.platform.commands.cli import main
from sddarts.trainables.data.nb201_bench import FIGURES

pytestmark = pytest.mark.ray

SMALL = ["--C", "4", "--layers", "3", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
         "--cpus-per-worker", "0.5"]


def _dataset_json(client, run_id, tmp_path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, "dataset.json", str(tmp_path))).read_text())


def test_search_proxy_trial_and_evaluation_on_an_image_folder(ray_session, tmp_path, sqlite_uri, capsys):
    root = str(write_image_folder(tmp_path / "pets"))
    data = ["--dataset", "imagefolder", "--data-dir", root, "--image-size", "16"]
    where = ["--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")]
    assert main(["search", *data, *SMALL, "--num-workers", "1", "--name", "pets-search", *where]) == 0, capsys.readouterr().out[-3000:]
    client = MlflowClient(sqlite_uri)
    (search,) = client.search_runs([client.get_experiment_by_name("sddarts").experiment_id],
                                   filter_string="attributes.run_name = 'pets-search'")
    params = search.data.params
    assert params["dataset"] == "imagefolder" and params["image_size"] == "16"
    mean = [float(v) for v in params["data_mean"].split(",")]
    assert len(mean) == 3 and all(0 < m < 1 for m in mean) and params["data_std"]
    record = _dataset_json(client, search.info.run_id, tmp_path / "a")
    assert record["classes"] == ["cat", "dog", "owl"] and record["image_size"] == 16 and record["mean"] == mean
    assert (record["train_images"], record["test_images"]) == (36, 12)

    rc = main(["evaluate", "--search-run", search.info.run_id, *data, *SMALL, "--num-workers", "1", "--name", "pets-eval", *where])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "registered: models:/sddarts-darts-pets/1" in out
    (evaluation,) = client.search_runs([search.info.experiment_id], filter_string="attributes.run_name = 'pets-eval'")
    assert evaluation.data.params["data_mean"] == params["data_mean"] and "test_acc" in evaluation.data.metrics
    assert _dataset_json(client, evaluation.info.run_id, tmp_path / "b")["num_classes"] == 3

    rc = main(["sweep", *data, *SMALL, "--workers-per-trial", "1", "--trials", "1", "--no-asha", "--proxy-epochs", "1",
               "--name", "pets-sweep", *where])
    assert rc == 0, capsys.readouterr().out[-3000:]
    _, children = parent_and_children(sqlite_uri, "sweep")
    (trial,) = [c for c in children if c.data.tags["kind"] == "search"]
    (proxy,) = client.search_runs([trial.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{trial.info.run_id}'")
    assert proxy.data.tags["kind"] == "proxy" and "val_acc" in proxy.data.metrics
    assert proxy.data.params["data_mean"] == trial.data.params["data_mean"] == params["data_mean"]
    assert trial.data.metrics["proxy_acc"] == proxy.data.metrics["val_acc"]


def test_an_nb201_search_logs_the_benchmarks_figures_of_the_cell_it_derived(ray_session, tmp_path, sqlite_uri, capsys):
    cells = every_cell()
    expected = write_nats_archive(tmp_path / "nats", cells, records=40)
    rc = main(["search", "--space", "nb201", "--C", "4", "--layers", "1", "--epochs", "2", "--steps-per-epoch", "2",
               "--batch-size", "16", "--num-workers", "1", "--cpus-per-worker", "0.5", "--nb201-bench", str(tmp_path / "nats"),
               "--name", "bench", "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    assert rc == 0, capsys.readouterr().out[-3000:]
    client = MlflowClient(sqlite_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sddarts").experiment_id], filter_string="attributes.run_name = 'bench'")
    genotypes = json.loads(Path(client.download_artifacts(run.info.run_id, "genotypes.json", str(tmp_path))).read_text())
    arch = json.loads(Path(client.download_artifacts(run.info.run_id, "genotype.json", str(tmp_path))).read_text())
    from sddarts.search_spaces import genotype_from_dict

    final = genotype_from_dict(arch).arch_str()
    assert run.data.params["nb201_bench"] == str((tmp_path / "nats").resolve())
    for key in FIGURES:
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2]
        assert history[-1].value == pytest.approx(expected[final][key])
    assert len(genotypes) == 2
