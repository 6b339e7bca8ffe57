"""What users see: DARTS vs SD-DARTS side by side (a search's own pictures: test_search_ray)."""

from pathlib import Path

import numpy as np
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


def test_compare_logs_the_side_by_side_plot_and_table(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["compare", "--seeds", "2", "--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "3",
               "--cpus-per-worker", "0.5", "--teacher-interval", "1", "--sharpness-every", "1",
               "--sharpness-iters", "3", "--sharpness-batches", "1", "--name", "cmp",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "DARTS" in out and "SD-DARTS" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    assert len(children) == 4 and {c.data.tags["method"] for c in children} == {"darts", "sd-darts"}
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison_summary.csv"} <= files
    _png_ok(Path(client.download_artifacts(parent.info.run_id, "plots/comparison.png", str(tmp_path))))
    table = Path(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path))).read_text()
    assert len(table.strip().splitlines()) == 5
    assert "darts_hessian_eig" in parent.data.metrics and "sd_darts_discretization_gap" in parent.data.metrics
