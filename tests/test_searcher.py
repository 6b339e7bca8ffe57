"""The Ray-free, MLflow-free Searcher: the search's own epoch on one process."""

import json
import math
import subprocess
import sys

import pytest

from sddarts.search_spaces.errors import ConfigError

SCRIPT = """
import json, sys
from sddarts.trainables.sd_darts.searcher import Searcher
searcher = Searcher(preset="digits-demo", epochs=2, steps_per_epoch=3, C=4, layers=3, sharpness_every=2, say=print)
rows = [{k: m[k] for k in ("epoch", "train_ce", "val_acc", "derived_val_acc", "genotype")} | {"eig": m.get("hessian_eig")}
        for m in searcher]
import ray
print(json.dumps({"rows": rows, "genotype": searcher.genotype.short(), "space": searcher.genotype.space,
                  "mlflow": "mlflow" in sys.modules, "ray_up": ray.is_initialized()}))
"""


def test_searcher_runs_the_search_epoch_without_ray_or_mlflow(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rows = result["rows"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train_ce"]) and 0 <= r["val_acc"] <= 100 for r in rows)
    assert rows[0]["eig"] is None and rows[1]["eig"] > 0  # measured every 2nd epoch, as in a search
    assert result["genotype"] == rows[-1]["genotype"] and result["space"] == "darts"
    assert not result["mlflow"] and not result["ray_up"]  # no tracker imported, no Ray started
    assert list(tmp_path.iterdir()) == []  # and nothing written


def test_searcher_yields_the_same_epochs_for_the_same_seed():
    from sddarts.trainables.sd_darts.searcher import Searcher

    runs = [[m["train_ce"] for m in Searcher(epochs=2, steps_per_epoch=2, C=4, layers=3, seed=3, dataset="digits",
                                              sharpness_every=0)] for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs,needle", [
    (dict(preset="nope"), "preset 'nope' is not a search preset"),
    (dict(vote_cnt=2), "unknown config field(s) vote_cnt"),
    (dict(epochs=0), "epochs"),
])
def test_searcher_refuses_bad_config_in_one_line(kwargs, needle):
    from sddarts.trainables.sd_darts.searcher import Searcher

    with pytest.raises(ConfigError) as info:
        Searcher(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)
