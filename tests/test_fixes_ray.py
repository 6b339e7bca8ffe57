"""The field's fixes and the controls on a real Ray: a comparison with a random arm and a variant
with every fix on at once, and a testbed's power."""

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from helpers import parent_and_children
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray

TINY = ["--space", "nb201", "--C", "4", "--layers", "1", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "32",
        "--cpus-per-worker", "0.5", "--teacher-interval", "1", "--vote-count", "2"]


@pytest.mark.timeout(1500)  # 14 Train runs: about 4 minutes alone on 2 cores, far more beside other work
def test_compare_with_random_arm_and_every_fix_at_once(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["compare", *TINY, "--seeds", "2", "--random", "2", "--proxy-epochs", "1", "--name", "ctl",
               "--variant", "all=--aux-skip 1 --beta-decay 1 --perturb random --partial-channels 2",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "DARTS vs all, 2 random genotypes per seed" in out
    client = MlflowClient(sqlite_uri)
    parent, children = parent_and_children(sqlite_uri, "compare")
    by = {}
    for c in children:
        by.setdefault(c.data.tags["variant"], []).append(c)
    assert {k: len(v) for k, v in by.items()} == {"DARTS": 2, "all": 2, "random": 2}
    every = by["all"][0].data
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
    table = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison.csv", str(tmp_path)))
    rand = table[table["variant"] == "random"].set_index("seed")["proxy_acc"]
    best = table[table["variant"] == "random-best"].set_index("seed")["proxy_acc"]
    assert len(rand) == 2 and (best >= rand).all()
    stats = pd.read_csv(client.download_artifacts(parent.info.run_id, "comparison_stats.csv", str(tmp_path)))
    assert set(stats["variant"]) == {"all", "random", "random-best"}
    assert set(stats[stats["variant"] == "random"]["metric"]) == {"proxy_acc"}  # a random arm has no search figures
    checklist = Path(client.download_artifacts(parent.info.run_id, "checklist.md", str(tmp_path))).read_text()
    assert "- [x] random-sampling baseline: 2 uniform genotypes per seed" in checklist
    assert "- [x] same proxy retrain for every arm: 1 epochs" in checklist and "random " in checklist
    assert parent.data.tags["checklist.random_baseline"] == "true"


@pytest.mark.timeout(1200)
def test_power_compares_spread_across_genotypes_with_spread_across_seeds(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["power", *TINY, "--genotypes", "3", "--retrain-seeds", "2", "--proxy-epochs", "1", "--name", "pw",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "one genotype across 2 seeds" in out and "F = " in out
    client = MlflowClient(sqlite_uri)
    parent, _ = parent_and_children(sqlite_uri, "power")
    record = json.loads(Path(client.download_artifacts(parent.info.run_id, "power.json", str(tmp_path))).read_text())
    accs = {(d, s): a for _, d, s, a in record["retrains"]}
    assert set(accs) == {(0, 0), (1, 0), (2, 0), (0, 1)}
    between = [accs[(d, 0)] for d in range(3)]
    mean = sum(between) / 3
    sd = (sum((a - mean) ** 2 for a in between) / 2) ** 0.5
    assert record["stats"]["sd_genotypes"] == pytest.approx(sd)
    assert parent.data.metrics["n_genotypes"] == 3 and "sd_seeds" in parent.data.metrics
