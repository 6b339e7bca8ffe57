"""What users see: DARTS vs SD-DARTS side by side (a search's own pictures: test_search_ray)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from mlflow import MlflowClient

from conftest import parent_and_children
from sddarts.platform.cli import main

pytestmark = pytest.mark.ray


def _png_ok(path: Path) -> None:
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.std(pixels)) > 0.01  # not blank


def test_compare_logs_intervals_and_a_paired_test_in_any_space(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["compare", "--seeds", "2", "--space", "s3", "--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "3",
               "--cpus-per-worker", "0.5", "--teacher-interval", "1", "--sharpness-every", "1",
               "--sharpness-iters", "3", "--sharpness-batches", "1", "--name", "cmp",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "DARTS vs SD-DARTS in space s3" in out and "paired t-test" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    assert parent.data.tags["space"] == "s3"
    assert len(children) == 4 and {c.data.tags["method"] for c in children} == {"darts", "sd-darts"}
    assert {c.data.tags["space"] for c in children} == {"s3"}
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison_stats.csv", "comparison_stats.txt"} <= files
    for name in ("plots/comparison.png", "plots/comparison_intervals.png"):
        _png_ok(Path(client.download_artifacts(parent.info.run_id, name, str(tmp_path))))
    table = Path(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path))).read_text()
    assert len(table.strip().splitlines()) == 5
    stats = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison_stats.csv", str(tmp_path)))
    assert {"hessian_eig", "discretization_gap", "param_free_share"} <= set(stats["metric"])
    for _, r in stats.iterrows():  # two seeds each: every interval holds its mean, every test has its two pairs
        for m in ("DARTS", "SD-DARTS"):
            assert r[f"{m} n"] == 2 and r[f"{m} ci_low"] <= r[f"{m} mean"] <= r[f"{m} ci_high"], r["metric"]
        assert r["pairs"] == 2
    printed = [line for line in out.splitlines() if line.strip().startswith("param_free_share")]
    assert printed and "(n=2)" in printed[-1]
    assert "darts_hessian_eig" in parent.data.metrics and "sd_darts_param_free_share" in parent.data.metrics
