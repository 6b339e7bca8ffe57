"""`sddarts runs`: the tracking store from a terminal, against a real store holding a search, a
sweep and an evaluation."""

import json

import pytest

from helpers import ensure_ray, tiny_search, wait_for_free_cpus
from sddarts.platform.commands.cli import main
from sddarts.platform.options import RunOptions
from sddarts.platform.jobs import run_search

pytestmark = pytest.mark.ray
TINY = ["--C", "4", "--layers", "3", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32",
        "--cpus-per-worker", "0.5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A search, a 2-trial sweep and an evaluation of the search, in one sqlite store."""
    ensure_ray()
    tmp = tmp_path_factory.mktemp("browse")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    where = ["--tracking-uri", uri, "--storage-path", str(tmp / "runs")]
    search = run_search(tiny_search(epochs=2), RunOptions(name="solo", tracking_uri=uri, storage_path=str(tmp / "runs")))
    assert main(["sweep", *TINY, "--workers-per-trial", "1", "--trials", "2", "--no-asha", "--proxy-epochs", "0", "--name", "sw", *where]) == 0
    assert main(["evaluate", "--search-run", "solo", *TINY, "--num-workers", "1", "--name", "solo-eval", *where]) == 0
    wait_for_free_cpus()
    return uri, search


def _runs(capsys, *args) -> str:
    capsys.readouterr()
    assert main(["runs", *args]) == 0
    return capsys.readouterr().out


def test_list_shows_every_kind_newest_first(store, capsys):
    uri, search = store
    rows = json.loads(_runs(capsys, "--tracking-uri", uri, "--json"))
    kinds = [r["kind"] for r in rows]
    assert sorted(set(kinds)) == ["evaluate", "search", "sweep"] and kinds.count("search") == 3  # solo + 2 trials
    starts = [r["started"] for r in rows]
    assert starts == sorted(starts, reverse=True) and rows[0]["name"] == "solo-eval"
    solo = next(r for r in rows if r["name"] == "solo")
    assert solo["status"] == "FINISHED" and solo["genotype"] == search.genotype.short()
    assert solo["metrics"]["derived_val_acc"] == pytest.approx(search.metrics["derived_val_acc"])
    text = _runs(capsys, "--tracking-uri", uri)
    assert "solo-eval" in text and "test_acc=" in text and search.genotype.short() in text


def test_filters_by_kind_sweep_and_status(store, capsys):
    uri, _ = store
    sweeps = json.loads(_runs(capsys, "--tracking-uri", uri, "--kind", "sweep", "--json"))
    assert [r["name"] for r in sweeps] == ["sw"] and sweeps[0]["metrics"]["trials_completed"] == 2
    trials = json.loads(_runs(capsys, "--tracking-uri", uri, "--sweep", "sw", "--json"))
    assert len(trials) == 2 and all(r["parent_run_id"] == sweeps[0]["run_id"] for r in trials)
    assert json.loads(_runs(capsys, "--tracking-uri", uri, "--status", "FAILED", "--json")) == []


def test_one_run_in_full(store, capsys):
    uri, search = store
    d = json.loads(_runs(capsys, "solo", "--tracking-uri", uri, "--json"))  # by name
    assert d["run_id"] == search.run_id and d["params"]["vote_count"] == "2"
    assert [e["epoch"] for e in d["epochs"]] == [1, 2] and "derived_val_acc" in d["epochs"][0]
    assert {"genotype.json", "alpha.json", "checkpoint/state.pt", "plots/cell_normal.png"} <= set(d["artifacts"])
    assert [c["kind"] for c in d["children"]] == ["evaluate"]
    text = _runs(capsys, search.run_id, "--tracking-uri", uri)  # by id, as a table
    assert text.startswith(f"search run 'solo' ({search.run_id}): FINISHED") and "epochs:" in text
    sweep = json.loads(_runs(capsys, "sw", "--tracking-uri", uri, "--json"))
    assert len(sweep["children"]) == 2 and "best_config.json" in sweep["artifacts"]


def test_unknown_run_and_missing_store_are_one_line_errors(store, tmp_path, capsys):
    uri, _ = store
    assert main(["runs", "nope", "--tracking-uri", uri]) == 2
    assert capsys.readouterr().err.strip() == (f"sddarts: error: run: no run with id or name 'nope' in experiment "
                                               f"'sddarts' of {uri}")
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["runs", "--tracking-uri", missing]) == 2
    assert "has no store yet" in capsys.readouterr().err and not (tmp_path / "none.db").exists()
