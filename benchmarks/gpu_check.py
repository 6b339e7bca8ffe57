"""GPU check, one prepared command (under 8 minutes on one GPU): the search step at DARTS' search
config (C=16, 8 cells, 32x32x3, SD-DARTS with 3 teachers every 50 steps) in fp32 / bf16 x NCHW /
channels_last x first / second order at batch 64 and 256 (images per second and
``torch.cuda.max_memory_allocated``), then a 2-epoch search through Ray Train with NCCL on
CIFAR-shaped files it writes; prints one table (Markdown, for the README).

    python benchmarks/gpu_check.py        # exits 2 with a message where there is no GPU
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sddarts.search_spaces.supernet import Supernet
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.step_stats import StepStats


def step_figures(batch: int, precision: str, channels_last: bool, order: int, steps: int = 10,
                 device: str = "cuda") -> tuple[float, float]:
    """(images per second, peak MB) of the SD-DARTS step at DARTS' search config."""
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    cfg = SearchConfig(C=16, layers=8, batch_size=batch, precision=precision, channels_last=channels_last, order=order,
                       vote_count=3, teacher_interval=50)
    net = Supernet(16, 10, 8, 3).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    state = SearchState.create(cfg, net)
    for _ in range(3):
        state.ring.add(net, 0)
    xs = [(torch.randn(batch, 3, 32, 32, device=device).to(memory_format=fmt), torch.randint(0, 10, (batch,), device=device))
          for _ in range(2)]
    stats = StepStats()
    for _ in range(3):  # warm-up (cuDNN autotuning)
        search_step(state, xs[0], xs[1], stats)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        search_step(state, xs[0], xs[1], stats)
    sync()
    assert all(np.isfinite(v) for v in stats.totals().values()), "non-finite step statistics"
    return batch * steps / (time.perf_counter() - t), (torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan"))


def teacher_ms(batch: int, vmap: bool, steps: int = 10) -> float:
    """Milliseconds for the 3 teachers' forwards on one batch, looped or vmapped (DARTS' config)."""
    torch.manual_seed(0)
    cfg = SearchConfig(C=16, layers=8, batch_size=batch, vote_count=3, teacher_interval=50, teacher_vmap=vmap)
    net = Supernet(16, 10, 8, 3).cuda()
    state = SearchState.create(cfg, net)
    for _ in range(3):
        state.ring.add(net, 0)
    x = torch.randn(batch, 3, 32, 32, device="cuda")
    for _ in range(3):
        state.ring.predict(x, 2.0)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        state.ring.predict(x, 2.0)
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t) / steps


def write_cifar(root: Path, per_file: int = 400) -> None:
    """CIFAR-10's python batches, random images (the search's speed and plumbing, not its accuracy)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_file).tolist(), b"batch_label": name.encode()}
        with (folder / name).open("wb") as fh:
            pickle.dump(entry, fh)


def ray_search(tmp: str) -> tuple[int, float]:
    """A 2-epoch search on CIFAR-shaped files through Ray Train (NCCL on the GPU): (exit code, seconds)."""
    write_cifar(Path(tmp) / "data")
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    cmd = [sys.executable, "-m", "sddarts.platform.commands.cli", "search", "--preset", "cifar10-darts", "--data-dir", f"{tmp}/data",
           "--epochs", "2", "--batch-size", "64", "--num-workers", "1", "--gpus-per-worker", "1", "--cpus-per-worker", "4",
           "--precision", "bf16", "--channels-last", "--sharpness-every", "1", "--sharpness-batches", "1",
           "--tracking-uri", f"sqlite:///{tmp}/mlflow.db", "--storage-path", f"{tmp}/runs", "--name", "gpu-check"]
    print("$ sddarts " + " ".join(cmd[4:]), flush=True)
    t = time.perf_counter()
    rc = subprocess.run(cmd, env=env, cwd=tmp).returncode
    return rc, time.perf_counter() - t


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to torch here; run it on a GPU node "
              "(e.g. `ray job submit -- python benchmarks/gpu_check.py`)", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(0)
    rows = []
    for batch in (64, 256):
        for order in (1, 2):
            for precision in ("fp32", "bf16"):
                for cl in (False, True):
                    try:
                        ips, mb = step_figures(batch, precision, cl, order)
                    except (AssertionError, RuntimeError) as exc:  # a non-finite step, or out of memory
                        print(f"  batch {batch} order {order} {precision} cl={cl}: {exc}", flush=True)
                        ips, mb = float("nan"), float("nan")
                    rows.append((batch, order, precision, "channels_last" if cl else "NCHW", ips, mb))
                    print(f"  batch {batch} order {order} {precision} {rows[-1][3]}: {ips:.0f} img/s, {mb:.0f} MB", flush=True)
    teachers = {(b, v): teacher_ms(b, v) for b in (64, 256) for v in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        rc, wall = ray_search(tmp)
    print(f"\nGPU: {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}; SD-DARTS step (K=3), C=16, 8 cells, 32x32x3\n")
    print("| batch | order | precision | layout | images/s | peak MB |")
    print("|---|---|---|---|---|---|")
    for batch, order, precision, layout, ips, mb in rows:
        print(f"| {batch} | {order} | {precision} | {layout} | {ips:.0f} | {mb:.0f} |")
    print("\n| batch | 3 teachers looped, ms | vmapped (--teacher-vmap), ms |\n|---|---|---|")
    for b in (64, 256):
        print(f"| {b} | {teachers[(b, False)]:.1f} | {teachers[(b, True)]:.1f} |")
    print(f"\n2-epoch search through Ray Train (NCCL, bf16, channels_last): {'ok' if rc == 0 else f'FAILED ({rc})'} in {wall:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
