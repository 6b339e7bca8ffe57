"""Commands that only read a tracking store refuse one that does not exist, and leave no file."""

import pytest

from sddarts.platform.commands.cli import main


@pytest.mark.parametrize("argv,needle", [
    (["export", "models:/nope/1", "--out", "m.onnx", "--format", "onnx"], "new.db does not exist, so it holds no model 'models:/nope/1'"),
    (["export", "runs:/abc/model", "--out", "m.onnx", "--format", "onnx"], "does not exist, so it holds no model"),
    (["export", "my-eval", "--out", "m.onnx", "--format", "onnx"], "holds no runs to look it up in"),
    (["runs"], "has no store yet"),
    (["runs", "some-run"], "has no store yet"),
    (["describe", "some-search-run"], "holds no runs"),
])
def test_a_read_of_a_missing_store_is_one_line_and_creates_nothing(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main([*argv, "--tracking-uri", "sqlite:///new.db"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert list(tmp_path.iterdir()) == []  # no new.db, no mlruns/, no model file
