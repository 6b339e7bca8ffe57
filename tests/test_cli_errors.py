"""Bad input exits non-zero with one line naming the field and range, and starts nothing."""

import pytest

from sddarts.platform.cli import main


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "mnist"], "dataset must be one of digits, cifar10, cifar100 (got 'mnist')"),
    (["--space", "nb201"], "space must be one of darts (got 'nb201')"),
    (["--vote-count", "-1"], "vote_count must be >= 0 (got -1)"),
    (["--temperature", "0"], "temperature must be > 0 (got 0.0)"),
    (["--train-portion", "1.5"], "train_portion must be > 0 and < 1 (got 1.5)"),
    (["--order", "3"], "order must be one of 1, 2 (got 3)"),
    (["--C", "7"], "C must be even"),
    (["--num-workers", "64"], "needs 64 CPUs but the Ray cluster has"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent"], "has no cifar10 batches"),
    (["--tracking-uri", "file:./mlruns"], "MLflow 3.13+ refuses file stores"),
    (["--tracking-uri", "http://127.0.0.1:9"], "is not reachable"),
    (["--resume", "never-ran"], "resume: no run named 'never-ran' under storage_path"),
    (["--name", "a/b"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["--name", "../escape"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["--name", "caf\u00e9"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["--name", "x" * 101], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["--lr", "nan"], "lr must be a finite number, > 0 (got nan)"),
    (["--temperature", "inf"], "temperature must be a finite number, > 0 (got inf)"),
    (["--holdout-portion", "0"], "holdout_portion must be > 0 and < 1 (got 0.0)"),
])
def test_bad_search_input(argv, message, tmp_path, monkeypatch, capsys):
    import ray

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    was_running = ray.is_initialized()
    assert main(["search", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("sddarts: error: ")]
    assert len(errors) == 1 and message in errors[0]  # one line, naming the field and its range
    assert not any("Traceback" in line for line in lines)
    assert ray.is_initialized() == was_running  # no Ray was started
    assert not (tmp_path / "sddarts_runs").exists()
