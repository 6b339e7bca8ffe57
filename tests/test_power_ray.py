"""``sddarts power`` on a real Ray: can a testbed tell architectures apart at all?"""

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import parent_and_children
from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray

TINY = ["--space", "nb201", "--C", "4", "--layers", "1", "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "32",
        "--cpus-per-worker", "0.5", "--teacher-interval", "1", "--vote-count", "2"]


@pytest.mark.timeout(1200)
def test_power_compares_spread_across_genotypes_with_spread_across_seeds(ray_session, tmp_path, sqlite_uri, capsys):
    rc = main(["power", *TINY, "--genotypes", "2", "--retrain-seeds", "2", "--proxy-epochs", "1", "--name", "pw",
               "--tracking-uri", sqlite_uri, "--storage-path", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    assert "one genotype across 2 seeds" in out and "F = " in out
    client = MlflowClient(sqlite_uri)
    parent, _ = parent_and_children(sqlite_uri, "power")
    record = json.loads(Path(client.download_artifacts(parent.info.run_id, "power.json", str(tmp_path))).read_text())
    accs = {(d, s): a for _, d, s, a in record["retrains"]}
    assert set(accs) == {(0, 0), (1, 0), (0, 1)}  # genotypes 0 and 1 at seed 0, genotype 0 at seed 1
    between = [accs[(d, 0)] for d in range(2)]
    mean = sum(between) / 2
    sd = (sum((a - mean) ** 2 for a in between) / 1) ** 0.5
    assert record["stats"]["sd_genotypes"] == pytest.approx(sd)
    assert parent.data.metrics["n_genotypes"] == 2 and "sd_seeds" in parent.data.metrics
