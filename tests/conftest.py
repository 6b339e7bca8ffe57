"""Shared fixtures: one real local Ray for the session, and real MLflow sqlite stores."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # tests mix ray.init and `ray start`
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# S3 tests point at closed ports on 127.0.0.1: dummy credentials, and no instance-metadata look-up
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "sddarts-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sddarts-test")
from helpers import ROOT, ensure_ray, readme_block, tiny_search, wait_for_free_cpus  # noqa: E402
from sddarts.platform.compat.ray_local import LOCAL_TRAIN_ENV  # noqa: E402

# The session's Ray also runs the jobs of the CLI processes that join it (RAY_ADDRESS). Its workers
# inherit this environment, so those jobs run Train as a command's own local Ray does.
for _key, _value in LOCAL_TRAIN_ENV.items():
    os.environ.setdefault(_key, _value)

sys.path.insert(0, str(ROOT / "benchmarks"))  # the reference DARTS port lives there


def pytest_collection_modifyitems(items):
    """The multi-node test stops the session's Ray (one Ray per host at a time): it runs last, so
    no test after it starts that Ray again."""
    items.sort(key=lambda item: item.path.name == "test_cluster_multinode.py")


@pytest.fixture(scope="session", autouse=True)
def _shutdown_ray_at_the_end():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(autouse=True)
def _tracking_uri_env_restored():
    """``mlflow.set_tracking_uri`` writes MLFLOW_TRACKING_URI into the environment; a test that
    calls it must not point the next test's default store elsewhere."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture
def ray_session() -> str:
    """The session's Ray (see ``ensure_ray``), up for this test."""
    return ensure_ray()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with no runs, its tables made once by MLflow itself (its schema
    migrations take ~1.6 s per new file)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_uri(tmp_path: Path, empty_store: Path) -> str:
    """A test's own MLflow store: a copy of ``empty_store``."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def readme_runs(tmp_path_factory) -> SimpleNamespace:
    """The README's "From Python" block, run once as written in a folder of its own (the defaults:
    ``sqlite:///mlflow.db`` and ``sddarts_runs`` there): a search, its evaluation (version 1 of
    ``sddarts-darts-digits``) and a 2-trial sweep. The README test checks them; ``sddarts runs``,
    the registry and the evaluation tests read the same store instead of making their own."""
    ensure_ray()
    where = tmp_path_factory.mktemp("readme")
    namespace: dict = {}
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.chdir(where)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        exec(compile(readme_block("## From Python"), "README.md", "exec"), namespace)
    wait_for_free_cpus()
    return SimpleNamespace(dir=where, uri=f"sqlite:///{where / 'mlflow.db'}", out=printed.getvalue(),
                           found=namespace["found"], model=namespace["model"], swept=namespace["swept"])


@pytest.fixture(scope="session")
def watched_run(tmp_path_factory) -> SimpleNamespace:
    """One 2-epoch bf16 search in RobustDARTS' S1 with sharpness every epoch, a progress line at every step and system
    metrics every 0.5 s, and its console: read by the progress, bf16, browser and DatasetManager tests."""
    from sddarts.platform.jobs import run_search
    from sddarts.platform.options import RunOptions

    ensure_ray()
    where = tmp_path_factory.mktemp("watched")
    uri = f"sqlite:///{where / 'mlflow.db'}"
    cfg = tiny_search(space="s1", epochs=2, precision="bf16", sharpness_every=1, sharpness_batches=1)
    opts = RunOptions(name="watched", tracking_uri=uri, storage_path=str(where / "runs"), progress_interval=0.001,
                      system_metrics_interval=0.5)  # every step "takes longer" than that
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the workers' lines reach it through Ray's log thread
        out = run_search(cfg, opts)
        deadline = time.time() + 10
        while "[watched] epoch 2/2 " not in printed.getvalue() and time.time() < deadline:
            time.sleep(0.1)
    wait_for_free_cpus()
    return SimpleNamespace(dir=where, uri=uri, out=out, console=printed.getvalue())
