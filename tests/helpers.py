"""What the tests share: the session's one real Ray, a search small enough for a test, and ways
to read runs back. Imported as ``helpers`` (pytest puts ``tests/`` on the path); ``conftest.py``
holds only fixtures and the environment."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str, language: str = "python") -> str:
    """The first ``language`` code block under ``heading`` in the README."""
    import re

    section = (ROOT / "README.md").read_text().split(heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def ensure_ray() -> str:
    """The one real 2-CPU Ray of the session (dashboard on: Train V2 needs its State API), started
    again if a test shut it down (the multi-node test does, to keep one Ray per host). Returns its
    GCS address, which subprocesses join through RAY_ADDRESS."""
    import ray

    from sddarts.platform.compat.ray_local import forget_dead_cluster, local_ray_options

    if not ray.is_initialized():
        forget_dead_cluster()  # a stale `ray start` record would misdirect Train's placement-group cleaner
        ray.init(address="local", num_cpus=2, num_gpus=0, object_store_memory=256 * 1024**2, configure_logging=False,
                 **local_ray_options())
    return ray.get_runtime_context().gcs_address


def tiny_search(**overrides):
    """A search small enough for a test: digits, C=4, 3 cells, 3 steps per epoch."""
    from sddarts.trainables.config import SearchConfig

    values = dict(dataset="digits", C=4, layers=3, epochs=2, batch_size=32, steps_per_epoch=3, num_workers=1,
                  cpus_per_worker=0.5, vote_count=2, teacher_interval=1, arch_lr=0.01, max_failures=0)
    values.update(overrides)
    return SearchConfig(**values).validate()


def parent_and_children(tracking_uri: str, kind: str):
    """The one parent run tagged ``kind`` in the ``sddarts`` experiment, and its nested runs."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("sddarts").experiment_id
    (parent,) = client.search_runs([exp], filter_string=f"tags.kind = '{kind}'")
    children = client.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return parent, children


def wait_for_free_cpus(total: float = 2.0, timeout: float = 180.0) -> None:
    """Waits until the session Ray has all its CPUs back. A killed driver's Train workers are
    freed asynchronously (Ray Train's placement-group cleaner polls the State API)."""
    import time

    import ray

    deadline = time.time() + timeout
    while time.time() < deadline:
        if ray.available_resources().get("CPU", 0) >= total - 1e-6:
            return
        time.sleep(0.25)
    raise AssertionError(f"Ray still holds CPUs after {timeout:.0f}s: {ray.available_resources()}")


def wait_for(predicate, timeout: float, what: str, log: Path, interval: float = 0.5):
    """``predicate()``'s first truthy value within ``timeout`` seconds, polled every ``interval``;
    else an AssertionError naming ``what`` with the end of ``log``."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"no {what} within {timeout:.0f}s:\n" + log.read_text()[-3000:])


def check_search_records(out, space: str, uri: str, tmp_path: Path) -> None:
    """What every search logs in every space: its space, genotype (logged = returned), genotype
    diagnostics, alpha with its ops, and non-blank cell pictures, alpha heatmap/evolution and curves."""
    import json

    import numpy as np
    from matplotlib import image
    from mlflow import MlflowClient

    from sddarts.search_spaces import genotype_from_json

    client = MlflowClient(uri)

    def artifact(path: str) -> Path:
        return Path(client.download_artifacts(out.run_id, path, str(tmp_path)))

    run = client.get_run(out.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["space"] == space and run.data.params["space"] == space
    logged = genotype_from_json(artifact("genotype.json").read_text())
    assert logged == out.genotype and logged.space == space
    for key in ("param_free_share", "skip_count", "alpha_max_mean"):
        assert key in run.data.metrics, key
    assert 0 <= run.data.metrics["param_free_share"] <= 1
    alpha = json.loads(artifact("alpha.json").read_text())
    cells = ("cell",) if space == "nb201" else ("normal", "reduce")
    assert alpha["space"] == space and all(f"alpha_{c}" in alpha and f"ops_{c}" in alpha for c in cells)
    for name in [f"plots/cell_{c}.png" for c in cells] + ["plots/alpha_heatmap.png", "plots/alpha_evolution.png",
                                                           "plots/curves.png"]:
        pixels = image.imread(artifact(name))
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and float(np.std(pixels)) > 0.01, name
