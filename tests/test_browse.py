"""`sddarts runs`: the tracking store from a terminal, against the store the README's Python block
wrote (a search, its evaluation and a 2-trial sweep; the session's ``readme_runs``)."""

import json

import pytest

from sddarts.platform.commands.cli import main

pytestmark = pytest.mark.ray


@pytest.fixture
def store(readme_runs):
    return readme_runs.uri, readme_runs.found


def _runs(capsys, *args) -> str:
    capsys.readouterr()
    assert main(["runs", *args]) == 0
    return capsys.readouterr().out


def test_list_shows_every_kind_newest_first(store, capsys):
    uri, search = store
    rows = json.loads(_runs(capsys, "--tracking-uri", uri, "--json"))
    kinds = [r["kind"] for r in rows]
    assert sorted(set(kinds)) == ["evaluate", "search", "sweep"] and kinds.count("search") == 3  # py-search + 2 trials
    starts = [r["started"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert [r["name"] for r in rows][-3:] == ["py-sweep", "py-eval", "py-search"]  # the trials started last
    found = next(r for r in rows if r["name"] == "py-search")
    assert found["status"] == "FINISHED" and found["genotype"] == search.genotype.short()
    assert found["metrics"]["derived_val_acc"] == pytest.approx(search.metrics["derived_val_acc"])
    text = _runs(capsys, "--tracking-uri", uri)
    assert "py-eval" in text and "test_acc=" in text and search.genotype.short() in text


def test_filters_by_kind_sweep_and_status(store, capsys):
    uri, _ = store
    sweeps = json.loads(_runs(capsys, "--tracking-uri", uri, "--kind", "sweep", "--json"))
    assert [r["name"] for r in sweeps] == ["py-sweep"] and sweeps[0]["metrics"]["trials_completed"] == 2
    trials = json.loads(_runs(capsys, "--tracking-uri", uri, "--sweep", "py-sweep", "--json"))
    assert len(trials) == 2 and all(r["parent_run_id"] == sweeps[0]["run_id"] for r in trials)
    assert json.loads(_runs(capsys, "--tracking-uri", uri, "--status", "FAILED", "--json")) == []


def test_one_run_in_full(store, capsys):
    uri, search = store
    d = json.loads(_runs(capsys, "py-search", "--tracking-uri", uri, "--json"))  # by name
    assert d["run_id"] == search.run_id and d["params"]["vote_count"] == "2"
    assert [e["epoch"] for e in d["epochs"]] == [1, 2] and "derived_val_acc" in d["epochs"][0]
    assert {"genotype.json", "alpha.json", "checkpoint/state.pt", "plots/cell_normal.png"} <= set(d["artifacts"])
    assert [c["kind"] for c in d["children"]] == ["evaluate"]
    text = _runs(capsys, search.run_id, "--tracking-uri", uri)  # by id, as a table
    assert text.startswith(f"search run 'py-search' ({search.run_id}): FINISHED") and "epochs:" in text
    sweep = json.loads(_runs(capsys, "py-sweep", "--tracking-uri", uri, "--json"))
    assert len(sweep["children"]) == 2 and "best_config.json" in sweep["artifacts"]


def test_unknown_run_and_missing_store_are_one_line_errors(store, tmp_path, capsys):
    uri, _ = store
    assert main(["runs", "nope", "--tracking-uri", uri]) == 2
    assert capsys.readouterr().err.strip() == (f"sddarts: error: run: no run with id or name 'nope' in experiment "
                                               f"'sddarts' of {uri}")
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["runs", "--tracking-uri", missing]) == 2
    assert "has no store yet" in capsys.readouterr().err and not (tmp_path / "none.db").exists()
