"""What users see: DARTS vs SD-DARTS side by side (a search's own pictures: test_search_ray)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from mlflow import MlflowClient
from scipy.stats import ttest_rel

from helpers import parent_and_children
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray


def _png_ok(path: Path) -> None:
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.std(pixels)) > 0.01  # not blank


def test_compare_runs_variants_against_darts_with_holm_corrected_paired_tests(ray_session, tmp_path, sqlite_uri,
                                                                             capsys):
    rc = main(["compare", "--seeds", "2", "--space", "s3", "--C", "4", "--layers", "3", "--epochs", "2", "--steps-per-epoch", "3",
               "--cpus-per-worker", "0.5", "--teacher-interval", "1", "--sharpness-every", "1",
               "--sharpness-iters", "3", "--sharpness-batches", "1", "--name", "cmp",
               "--variant", "w-only=--distill-on weights", "--variant", "last-step=--teacher-interval 1 --vote-count 1",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "DARTS vs w-only, last-step in space s3" in out and "Holm" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    assert parent.data.tags["space"] == "s3"
    assert len(children) == 6 and {c.data.tags["variant"] for c in children} == {"DARTS", "w-only", "last-step"}
    by_variant = {c.data.tags["variant"]: c for c in children}
    assert by_variant["w-only"].data.params["distill_on"] == "weights"
    assert by_variant["last-step"].data.params["vote_count"] == "1"
    assert by_variant["DARTS"].data.params["sd_weight"] == "0.0"
    assert "sd_loss" in by_variant["w-only"].data.metrics and "sd_loss_arch" not in by_variant["w-only"].data.metrics
    assert "sd_loss_arch" in by_variant["last-step"].data.metrics
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison_stats.csv", "comparison_stats.txt", "variants.json"} <= files
    for name in ("plots/comparison.png", "plots/comparison_intervals.png"):
        _png_ok(Path(client.download_artifacts(parent.info.run_id, name, str(tmp_path))))
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path)))
    assert len(table) == 6
    stats = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison_stats.csv", str(tmp_path)))
    assert set(stats["variant"]) == {"w-only", "last-step"}
    assert {"hessian_eig", "discretization_gap", "param_free_share"} <= set(stats["metric"])
    # by hand: paired differences over seeds 0 and 1, scipy's paired t-test, Holm over every p
    expected_p = []
    for _, r in stats.iterrows():
        base = table[table["variant"] == "DARTS"].set_index("seed")[r["metric"]]
        mine = table[table["variant"] == r["variant"]].set_index("seed")[r["metric"]]
        diffs = (mine - base).dropna()
        assert r["pairs"] == 2 and r["diff"] == pytest.approx(diffs.mean())
        if diffs.max() - diffs.min() > 1e-9 * max(1.0, abs(diffs.mean())):  # equal up to rounding: no test
            expected_p.append(float(ttest_rel(mine[diffs.index], base[diffs.index]).pvalue))
            assert r["p"] == pytest.approx(expected_p[-1])
        else:
            expected_p.append(np.nan)
            assert np.isnan(r["p"])
    finite = sorted((p, i) for i, p in enumerate(expected_p) if np.isfinite(p))
    holm, running = [np.nan] * len(expected_p), 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        holm[i] = running
    np.testing.assert_allclose(stats["p_holm"].to_numpy(dtype=float), np.array(holm, dtype=float), equal_nan=True)
    for _, r in stats.iterrows():  # two seeds each: every interval holds its mean
        for side in ("DARTS", "variant"):
            assert r[f"{side} n"] == 2 and r[f"{side} ci_low"] <= r[f"{side} mean"] <= r[f"{side} ci_high"], r["metric"]
    printed = [line for line in out.splitlines() if line.strip().startswith("w-only") and "param_free_share" in line]
    assert printed and "(n=2)" in printed[-1]
    assert "darts_hessian_eig" in parent.data.metrics and "w_only_param_free_share" in parent.data.metrics
    assert any(k.startswith("p_holm_last_step_") for k in parent.data.metrics)
