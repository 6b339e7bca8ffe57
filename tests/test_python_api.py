"""The README's "From Python" block, run as written, and the API's one-line errors."""

from pathlib import Path

import pytest

import sddarts
from helpers import readme_block


@pytest.mark.ray
def test_the_readmes_python_block_runs_as_written(readme_runs, monkeypatch):
    found, model, swept, where = readme_runs.found, readme_runs.model, readme_runs.swept, readme_runs.dir
    assert [e["epoch"] for e in found.history] == [1, 2] and "derived_val_acc" in found.history[-1]
    assert found.genotype.space == "darts" and found.metrics["epoch"] == 2
    assert model.model_uri == "models:/sddarts-darts-digits/1" and 0 <= model.metrics["test_acc"] <= 100
    assert len(swept.rows) == 2 and {r["status"] for r in swept.rows} <= {"completed", "stopped"}
    assert swept.parent_run_id and (where / "mlflow.db").is_file()
    from mlflow import MlflowClient

    client = MlflowClient(readme_runs.uri)
    run = client.get_run(found.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "py-search"
    assert "genotype.py" in {a.path for a in client.list_artifacts(found.run_id)}
    assert client.get_run(model.run_id).data.tags["mlflow.parentRunId"] == found.run_id
    assert found.genotype.short() in readme_runs.out

    import torch

    monkeypatch.chdir(where)  # the block reads sqlite:///mlflow.db, the store the block above wrote
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    models: dict = {}  # the README's three ways of using the registered model, as written
    exec(compile(readme_block("## Models out"), "README.md", "exec"), models)
    images, logits, net, scores = models["images"], models["logits"], models["net"], models["scores"]
    assert isinstance(net, torch.nn.Module) and not net.training
    with torch.no_grad():
        assert torch.allclose(net(images), logits, atol=1e-4)
    assert scores.shape == (4, 10) and torch.allclose(torch.as_tensor(scores), logits, atol=1e-4)


@pytest.mark.parametrize("call,needle", [
    (lambda: sddarts.search(vote_count=-1), "vote_count must be >= 0"),
    (lambda: sddarts.search(vote_cnt=2), "unknown config field(s) vote_cnt"),
    (lambda: sddarts.search(name="bad/name"), "name must be"),
    (lambda: sddarts.evaluate("NOT_A_GENOTYPE"), "genotype 'NOT_A_GENOTYPE' is neither a built-in"),
    (lambda: sddarts.sweep(trials=0), "trials must be >= 1"),
])
def test_bad_input_raises_the_clis_line_before_ray_starts(call, needle, tmp_path, monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    was_running = ray.is_initialized()
    with pytest.raises(sddarts.SddartsError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value) and info.value.exit_code == 2
    assert ray.is_initialized() == was_running and not Path("mlflow.db").exists()


def test_a_runs_history_is_its_epochs_without_the_system_metrics_samples(sqlite_uri):
    """A run longer than the sampling interval holds ``system/...`` metrics at steps 0, 1, ...:
    they are no epochs (a loaded machine once gave a history that began with a step-0 entry)."""
    from mlflow import MlflowClient

    from sddarts.platform.jobs import history_of

    client = MlflowClient(sqlite_uri)
    run_id = client.create_run(client.create_experiment("h")).info.run_id
    for step in (0, 1, 2, 3):
        client.log_metric(run_id, "system/cpu_utilization_percentage", 50.0 + step, step=step)
    for step in (1, 2):
        client.log_metric(run_id, "val_acc", 10.0 * step, step=step)
    assert history_of(sqlite_uri, run_id) == [{"epoch": 1, "val_acc": 10.0}, {"epoch": 2, "val_acc": 20.0}]
