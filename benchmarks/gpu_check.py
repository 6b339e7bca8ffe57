"""GPU check: a short 1-worker SD-DARTS search on the GPU through Ray Train (NCCL backend), then
images per second of the supernet step on that GPU.

    python benchmarks/gpu_check.py            # exits 2 with a message where there is no GPU
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch here; run it on a GPU node "
              "(e.g. `ray job submit -- python benchmarks/gpu_check.py`)", file=sys.stderr)
        return 2
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
        search = [sys.executable, "-m", "sddarts.platform.cli", "search", "--preset", "digits-demo", "--epochs", "2",
                  "--num-workers", "1", "--gpus-per-worker", "1", "--cpus-per-worker", "1",
                  "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--storage-path", f"{tmp}/runs", "--name", "gpu-check"]
        print("$ " + " ".join(search[1:]), flush=True)
        if subprocess.run(search, env=env, cwd=tmp).returncode:
            print("gpu_check: the GPU search failed", file=sys.stderr)
            return 1
    bench = [sys.executable, str(HERE / "search_step.py"), "--device", "cuda", "--steps", "20", "--warmup", "3"]
    for config in (["--C", "16", "--layers", "8", "--batch", "64", "--size", "32", "--channels", "3"],
                   ["--C", "16", "--layers", "8", "--batch", "256", "--size", "32", "--channels", "3"]):
        print("$ " + " ".join(["search_step.py", *config]), flush=True)
        if subprocess.run(bench + config).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
