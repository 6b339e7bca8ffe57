"""A sweep trial (a search and its proxy retrain) and an evaluation on an image folder the test
writes. (An nb201 search with NAS-Bench-201's figures from an archive: test_spaces_ray.py.)"""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import parent_and_children
from dataset_files import write_image_folder
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray

SMALL = ["--C", "4", "--layers", "3", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
         "--cpus-per-worker", "0.5"]


def _dataset_json(client, run_id, tmp_path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, "dataset.json", str(tmp_path))).read_text())


def test_search_proxy_trial_and_evaluation_on_an_image_folder(ray_session, tmp_path, sqlite_uri, capsys):
    """A one-trial sweep (the trial a search, retrained as the proxy), then an evaluation of that search."""
    root = str(write_image_folder(tmp_path / "pets"))
    data = ["--dataset", "imagefolder", "--data-dir", root, "--image-size", "16"]
    where = ["--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")]
    rc = main(["sweep", *data, *SMALL, "--workers-per-trial", "1", "--trials", "1", "--no-asha", "--proxy-epochs", "1",
               "--name", "pets-sweep", *where])
    assert rc == 0, capsys.readouterr().out[-3000:]
    client = MlflowClient(sqlite_uri)
    _, children = parent_and_children(sqlite_uri, "sweep")
    (search,) = [c for c in children if c.data.tags["kind"] == "search"]
    params = search.data.params
    assert params["dataset"] == "imagefolder" and params["image_size"] == "16"
    mean = [float(v) for v in params["data_mean"].split(",")]
    assert len(mean) == 3 and all(0 < m < 1 for m in mean) and params["data_std"]
    record = _dataset_json(client, search.info.run_id, tmp_path / "a")
    assert record["classes"] == ["cat", "dog", "owl"] and record["image_size"] == 16 and record["mean"] == mean
    assert (record["train_images"], record["test_images"]) == (36, 12)
    (proxy,) = client.search_runs([search.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{search.info.run_id}'")
    assert proxy.data.tags["kind"] == "proxy" and "val_acc" in proxy.data.metrics
    assert proxy.data.params["data_mean"] == params["data_mean"]
    assert search.data.metrics["proxy_acc"] == proxy.data.metrics["val_acc"]

    rc = main(["evaluate", "--search-run", search.info.run_id, *data, *SMALL, "--num-workers", "1", "--name", "pets-eval", *where])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "registered: models:/sddarts-darts-pets/1" in out
    (evaluation,) = client.search_runs([search.info.experiment_id], filter_string="attributes.run_name = 'pets-eval'")
    assert evaluation.data.params["data_mean"] == params["data_mean"] and "test_acc" in evaluation.data.metrics
    assert _dataset_json(client, evaluation.info.run_id, tmp_path / "b")["num_classes"] == 3
