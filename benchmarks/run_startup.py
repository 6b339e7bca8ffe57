"""What a Train run costs before and after its epochs, side by side in one run.

A search, an evaluation, a sweep trial and a proxy retrain each start a Train controller and
fresh worker processes; on small data that start-up, not the epochs, sets a run's time. Two
measurements, of two arms each:

1. a worker's imports (a fresh process importing the search loop and loading digits), as
   sddarts does it (no torchvision, no ``sklearn.datasets``) and with those two imported as
   before (the arms alternate);
2. a tiny search (digits, C=4, 3 cells, 1 epoch of 3 steps, 1 worker) on a local Ray started by
   ``local_ray_options``, with its Train settings (``LOCAL_TRAIN_ENV``: a 0.25 s poll, no
   PreemptionWatcher) and with Ray Train's defaults (a 2 s poll, a watcher per run). Each arm
   runs in a Ray of its own (a fresh process, one after the other), the first search of each
   discarded (warm-up);
3. the same tiny search without and with Train's PlacementGroupCleaner actor (what the CLI runs,
   ``placement_group_cleaner=False``, and ``run_search``'s default), set up as in 2;
4. saving a registered model (``mlflow.pytorch.save_model`` of an evaluated digits network) with
   MLflow's pytorch requirements, as ``register_model`` does, and with MLflow inferring them (a
   subprocess that loads the model and records what it imports), alternating.

    python benchmarks/run_startup.py --repeats 3 [--measure imports train-env cleaner requirements]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPORTS = ("from sddarts.trainables.workers.search_loop import train_loop_per_worker; "
           "from sddarts.trainables.data.datasets import DataSource, load_dataset; load_dataset(DataSource('digits'))")
AS_BEFORE = "import torchvision, sklearn.datasets; "
RAY_DEFAULTS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "2.0", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "1"}

SEARCHES = """
import sys, time
from sddarts.platform.compat.ray_local import local_ray_options
from sddarts.platform.jobs import run_search
from sddarts.platform.options import RunOptions
from sddarts.trainables.config import SearchConfig
import ray

ray.init(address="local", num_cpus=2, num_gpus=0, configure_logging=False, **local_ray_options())
tmp, n = sys.argv[1], int(sys.argv[2])
cfg = SearchConfig(dataset="digits", C=4, layers=3, epochs=1, batch_size=32, steps_per_epoch=3, num_workers=1,
                   cpus_per_worker=0.5, vote_count=2, teacher_interval=1, max_failures=0).validate()
for i in range(n + 1):
    t = time.perf_counter()
    run_search(cfg, RunOptions(name=f"s{i}", tracking_uri=f"sqlite:///{tmp}/m.db", storage_path=f"{tmp}/runs",
                               placement_group_cleaner=sys.argv[3] == "1"))
    print(f"SECONDS {time.perf_counter() - t:.2f}", flush=True)
ray.shutdown()
"""

SAVE = """
import sys, tempfile, time
import mlflow.pytorch, torch
from sddarts.platform.tracking.registry import Classifier
from sddarts.search_spaces import load_genotype
from sddarts.trainables.config import EVAL_PRESETS, EvalConfig
from sddarts.trainables.data.datasets import DataSource, dataset_info
from sddarts.trainables.workers.eval_loop import build_network

cfg = EvalConfig(**EVAL_PRESETS["digits-demo"]).validate()
info = dataset_info(DataSource.of(cfg))
model = Classifier(build_network(load_genotype("DARTS_V2"), cfg), info, {}).eval()
example = torch.rand(2, *model.input_shape).numpy()
for infer in [sys.argv[1] == "infer"] * (int(sys.argv[2]) + 1):
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        mlflow.pytorch.save_model(model, f"{d}/model", input_example=example,
                                  pip_requirements=None if infer else mlflow.pytorch.get_default_pip_requirements())
        print(f"SECONDS {time.perf_counter() - t:.2f}", flush=True)
"""


def import_seconds(prefix: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", prefix + IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - t


def seconds(script: str, args: list[str], env: dict[str, str] | None = None) -> list[float]:
    """The timings ``script`` prints after its first (a warm-up), in a fresh process."""
    done = subprocess.run([sys.executable, "-c", script, *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=True)
    return [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("SECONDS ")][1:]


def search_seconds(env: dict[str, str], repeats: int, cleaner: bool = True) -> list[float]:
    """The searches after the first, in a fresh process with its own local Ray."""
    with tempfile.TemporaryDirectory() as tmp:
        return seconds(SEARCHES, [tmp, str(repeats), "1" if cleaner else "0"], env)


def compare(title: str, names: tuple[str, str], now: list[float], before: list[float]) -> None:
    print(title)
    print(row(names[0], now))
    print(row(names[1], before))
    print(f"  ratio {statistics.mean(before) / statistics.mean(now):.2f}x")


def row(name: str, values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"  {name:<34} {statistics.mean(values):6.2f} s  (sd {spread:.2f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements per arm (default 3)")
    parser.add_argument("--measure", nargs="+", default=MEASURES, choices=MEASURES, help="which (default: all)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in RAY_DEFAULTS}
    os.environ.clear()
    os.environ.update(env)  # no arm inherits a user's setting of the two variables

    if "imports" in args.measure:
        now, before = [], []
        for _ in range(args.repeats):
            now.append(import_seconds(""))
            before.append(import_seconds(AS_BEFORE))
        compare("a worker's imports (search loop + digits), a fresh process:",
                ("sddarts", "with torchvision + sklearn.datasets"), now, before)
    if "train-env" in args.measure:
        compare("a tiny 1-epoch search, end to end (run_search):", ("LOCAL_TRAIN_ENV", "Ray Train's defaults"),
                search_seconds({}, args.repeats), search_seconds(RAY_DEFAULTS, args.repeats))
    if "cleaner" in args.measure:
        compare("a tiny 1-epoch search, end to end (run_search):", ("no PlacementGroupCleaner (the CLI)",
                "with it (run_search's default)"), search_seconds({}, args.repeats, cleaner=False),
                search_seconds({}, args.repeats, cleaner=True))
    if "requirements" in args.measure:
        given, inferred = [], []
        for _ in range(args.repeats):
            given += seconds(SAVE, ["given", "1"])
            inferred += seconds(SAVE, ["infer", "1"])
        compare("saving a registered digits model (mlflow.pytorch.save_model):",
                ("MLflow's pytorch requirements", "requirements inferred"), given, inferred)


MEASURES = ["imports", "train-env", "cleaner", "requirements"]

if __name__ == "__main__":
    main()
