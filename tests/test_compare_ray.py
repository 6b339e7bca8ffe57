"""One ``sddarts compare`` on a real Ray, read by two tests: DARTS against a variant with every fix
of the field on at once (SD-DARTS with one teacher) and a random arm, with Holm-corrected paired
tests, intervals, plots and the checklist. (How ``--distill-on`` reaches the SD terms:
test_distill.py; variant flags to overrides: test_compare_stats.py.)"""

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from mlflow import MlflowClient
from scipy.stats import ttest_rel

from helpers import ensure_ray, parent_and_children, wait_for_free_cpus
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray
EVERY_FIX = "--aux-skip 1 --beta-decay 1 --perturb random --partial-channels 2 --vote-count 1"


def _png_ok(path: Path) -> None:
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.std(pixels)) > 0.01  # not blank


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """2 seeds of DARTS and ``all-fixes`` in S3 (each searched, then retrained 1 epoch as the
    proxy), and 2 random genotypes per seed, retrained the same way: 12 Train runs."""
    ensure_ray()
    tmp = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["compare", "--seeds", "2", "--space", "s3", "--C", "4", "--layers", "3", "--epochs", "2",
                   "--steps-per-epoch", "3", "--batch-size", "32", "--cpus-per-worker", "0.5", "--teacher-interval", "1",
                   "--vote-count", "2", "--sharpness-every", "1", "--sharpness-iters", "3", "--sharpness-batches", "1",
                   "--random", "2", "--proxy-epochs", "1", "--name", "cmp",
                   "--variant", f"all-fixes={EVERY_FIX}",
                   "--tracking-uri", uri, "--storage-path", str(tmp / "runs")])
    out = printed.getvalue()
    assert rc == 0, out[-3000:]
    wait_for_free_cpus()
    return tmp, uri, out


def test_compare_runs_variants_against_darts_with_holm_corrected_paired_tests(compared):
    tmp_path, sqlite_uri, out = compared
    assert "DARTS vs all-fixes, 2 random genotypes per seed in space s3" in out and "Holm" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    assert parent.data.tags["space"] == "s3"
    assert len(children) == 6 and {c.data.tags["variant"] for c in children} == {"DARTS", "all-fixes", "random"}
    by_variant = {c.data.tags["variant"]: c for c in children}
    assert by_variant["all-fixes"].data.params["vote_count"] == "1"
    assert by_variant["DARTS"].data.params["sd_weight"] == "0.0"
    assert "sd_loss_arch" in by_variant["all-fixes"].data.metrics and "sd_loss_arch" not in by_variant["DARTS"].data.metrics
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.csv", "comparison_stats.csv", "comparison_stats.txt", "variants.json"} <= files
    for name in ("plots/comparison.png", "plots/comparison_intervals.png"):
        _png_ok(Path(client.download_artifacts(parent.info.run_id, name, str(tmp_path / "a"))))
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path / "a")))
    assert len(table) == 6 + 2  # and the best random genotype of each seed
    stats = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison_stats.csv", str(tmp_path / "a")))
    assert set(stats["variant"]) == {"all-fixes", "random", "random-best"}
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
    printed = [line for line in out.splitlines() if line.strip().startswith("all-fixes") and "param_free_share" in line]
    assert printed and "(n=2)" in printed[-1]
    assert "darts_hessian_eig" in parent.data.metrics and "all_fixes_param_free_share" in parent.data.metrics
    assert any(k.startswith("p_holm_all_fixes_") for k in parent.data.metrics)


def test_compare_with_random_arm_and_every_fix_at_once(compared):
    tmp_path, sqlite_uri, out = compared
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    by = {}
    for c in children:
        by.setdefault(c.data.tags["variant"], []).append(c)
    assert {k: len(v) for k, v in by.items()} == {"DARTS": 2, "all-fixes": 2, "random": 2}
    every = by["all-fixes"][0].data
    assert (every.params["aux_skip"], every.params["partial_channels"], every.params["perturb"]) == ("1.0", "2", "random")
    assert every.params["sd_weight"] == "1.0"  # SD-DARTS with every fix on top
    assert {"aux_skip_coef", "beta_weight", "perturb_epsilon", "beta_loss", "sd_loss"} <= set(every.metrics)
    assert every.metrics["aux_skip_coef"] == pytest.approx(0.5)  # epoch 2 of 2: 1 * (2 - 1) / 2
    darts = by["DARTS"][0].data
    assert (darts.params["aux_skip"], darts.params["sd_weight"], darts.params["perturb"]) == ("0.0", "0.0", "none")
    assert "aux_skip_coef" not in darts.metrics
    for run in by["random"]:  # no search: its draws, each retrained in a child run
        assert run.data.tags["kind"] == "random" and run.info.status == "FINISHED"
        retrains = client.search_runs([run.info.experiment_id],
                                      filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
        assert len(retrains) == 2 and all(r.data.tags["kind"] == "proxy" for r in retrains)
        assert run.data.metrics["proxy_acc"] == pytest.approx(sum(r.data.metrics["val_acc"] for r in retrains) / 2)
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path / "b")))
    rand = table[table["variant"] == "random"].set_index("seed")["proxy_acc"]
    best = table[table["variant"] == "random-best"].set_index("seed")["proxy_acc"]
    assert len(rand) == 2 and (best >= rand).all()
    stats = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison_stats.csv", str(tmp_path / "b")))
    assert set(stats["variant"]) == {"all-fixes", "random", "random-best"}
    assert set(stats[stats["variant"] == "random"]["metric"]) == {"proxy_acc"}  # a random arm has no search figures
    checklist = Path(client.download_artifacts(parent.info.run_id, "checklist.md", str(tmp_path / "b"))).read_text()
    assert "- [x] random-sampling baseline: 2 uniform genotypes per seed" in checklist
    assert "- [x] same proxy retrain for every arm: 1 epochs" in checklist and "random " in checklist
    assert parent.data.tags["checklist.random_baseline"] == "true"
