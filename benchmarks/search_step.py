"""Time and peak memory of one search step (alpha step + w step), side by side in one run.

Variants: plain DARTS and SD-DARTS with K = 1, 2, 3 teachers (a snapshot every 50 steps, as a
search takes them), first and second order, fp32 and bf16, the field's fixes (DARTS-, beta-DARTS,
SDARTS-RS/ADV, PC-DARTS with 2 and 4 channel groups against its K=1, which is DARTS), and the
reference DARTS step (a port of ``model_search.py``, ``benchmarks/reference_darts.py``) at the same config. Prints ms per step,
images per second, the ratios the README quotes (our DARTS step against the reference, SD-DARTS'
cost beyond its teachers' own inference forwards, second order against first), and each
variant's peak memory (CUDA: ``max_memory_allocated``; CPU: a fresh process per variant, the growth
of its resident set's high-water mark over the model built, reset through ``/proc/self/clear_refs``).

    python benchmarks/search_step.py                                   # the demo's config
    python benchmarks/search_step.py --C 16 --layers 8 --batch 32 --size 32 --channels 3   # DARTS' search
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_darts import ReferenceNetwork  # noqa: E402
from sddarts.search_spaces.supernet import Supernet  # noqa: E402
from sddarts.trainables.config import SearchConfig  # noqa: E402
from sddarts.trainables.sd_darts.epoch import fix_schedules  # noqa: E402
from sddarts.trainables.sd_darts.search_step import SearchState, search_step  # noqa: E402
from sddarts.trainables.sd_darts.step_stats import StepStats  # noqa: E402

VARIANTS = {  # name: (teachers, order, precision[, the fixes' config fields])
    "DARTS": (0, 1, "fp32"), "SD K=1": (1, 1, "fp32"), "SD K=2": (2, 1, "fp32"), "SD K=3": (3, 1, "fp32"),
    "DARTS 2nd": (0, 2, "fp32"), "SD K=3 2nd": (3, 2, "fp32"), "DARTS bf16": (0, 1, "bf16"),
    "SD K=3 bf16": (3, 1, "bf16"), "reference": None,
    "DARTS-": (0, 1, "fp32", {"aux_skip": 1.0}), "beta-DARTS": (0, 1, "fp32", {"beta_decay": 50.0}),
    "SDARTS-RS": (0, 1, "fp32", {"perturb": "random"}), "SDARTS-ADV": (0, 1, "fp32", {"perturb": "adversarial"}),
    "PC-DARTS K=2": (0, 1, "fp32", {"partial_channels": 2}), "PC-DARTS K=4": (0, 1, "fp32", {"partial_channels": 4}),
}


def time_round_robin(fns: dict, warmup: int, steps: int, sync) -> dict[str, float]:
    """Median seconds per call of each function, timed in turns (A, B, C, A, B, C, ...) so that
    the drift of a shared machine hits every variant alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def batch(args):
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=args.device)
    return x, torch.randint(0, 10, (args.batch,), device=args.device)


def ours(args, teachers: int, order: int = 1, precision: str = "fp32", fixes: dict | None = None):
    """A step of our search and, for SD, the state (to time its teachers alone)."""
    cfg = SearchConfig(C=args.C, layers=args.layers, batch_size=args.batch, vote_count=teachers, order=order,
                       sd_weight=1.0 if teachers else 0.0, teacher_interval=50, precision=precision, **(fixes or {}))
    torch.manual_seed(0)
    net = Supernet(args.C, 10, args.layers, args.channels, partial_channels=cfg.partial_channels,
                   aux_skip=cfg.aux_skip > 0).to(args.device)
    state = SearchState.create(cfg, net)
    fix_schedules(state, 1)  # the fixes' coefficients of epoch 2 (none is 0 there)
    for _ in range(teachers):  # a full ring, as after the first K * 50 steps
        state.ring.add(state.net, 0)
    bw, ba, stats = batch(args), batch(args), StepStats()
    return (lambda: search_step(state, bw, ba, stats)), state, (bw[0], ba[0])


def reference(args):
    """DARTS' first-order step: architect.step (val backward, alpha Adam), then w SGD + clip."""
    torch.manual_seed(0)
    net = ReferenceNetwork(args.C, 10, args.layers, args.channels).to(args.device)
    alphas = [net.alphas_normal, net.alphas_reduce]
    weights = [p for n, p in net.named_parameters() if not n.startswith("alphas")]
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    (x, y), (xv, yv) = batch(args), batch(args)

    def step():
        a_opt.zero_grad()
        F.cross_entropy(net(xv), yv).backward()
        a_opt.step()
        w_opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    return step


def make(args, name: str):
    spec = VARIANTS[name]
    return reference(args) if spec is None else ours(args, *spec)[0]


def peak_memory_mb(args, name: str) -> float:
    """Peak memory of ``name``'s steps in a fresh process: CUDA's peak allocation, or on a CPU the
    growth of the peak resident set over the process before its first step."""
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        fn = make(args, name)
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    argv = [sys.executable, __file__, "--one", name, *[f"--{k}={v}" for k, v in vars(args).items()
                                                     if k in ("C", "layers", "batch", "size", "channels", "threads")]]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def _status_kb(key: str) -> int:
    """A ``/proc/self/status`` figure in kB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def one(args) -> None:
    """``--one NAME``: three steps of NAME; prints the peak RSS growth (MB) as JSON: the resident
    set's high-water mark, reset after the imports (``/proc/self/clear_refs``), over the resident
    set then (``ru_maxrss`` growth where /proc is missing: the imports' peak hides smaller steps)."""
    import resource

    fn = make(args, args.one)
    try:
        before = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
        read_peak = lambda: _status_kb("VmHWM")  # noqa: E731
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read_peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    for _ in range(3):
        fn()
    print(json.dumps({"peak_mb": (read_peak() - before) / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--steps", type=int, default=9, help="timed steps per variant (the median is reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        return one(args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    names = [n for n in args.variants.split(",") if n]
    print(f"config: C={args.C} layers={args.layers} batch={args.batch} size={args.size} channels={args.channels} "
          f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    fns = {name: make(args, name) for name in names}
    _, sd3, (xw, xa) = ours(args, 3)
    fns["teachers K=3 alone"] = lambda: sd3.teacher_probs(xw, xa)  # the inference forwards SD-DARTS adds
    t = time_round_robin(fns, args.warmup, args.steps, sync)
    for name in names:
        mem = "" if args.no_memory else f" {peak_memory_mb(args, name):8.1f} MB peak"
        print(f"{name:<20} {1000 * t[name]:9.1f} ms/step {args.batch / t[name]:8.1f} img/s{mem}", flush=True)
    print(f"{'teachers K=3 alone':<20} {1000 * t['teachers K=3 alone']:9.1f} ms (two batches, three teachers)")
    base = t.get("DARTS")
    if base and "reference" in t:
        print(f"ratio: DARTS step, reference / ours = {t['reference'] / base:.2f}x (target >= 2.0)")
    if base and "SD K=3" in t:
        extra = (t["SD K=3"] - base - t["teachers K=3 alone"]) / base
        print(f"ratio: SD K=3 / DARTS = {t['SD K=3'] / base:.2f}; beyond its teachers' forwards: {100 * extra:+.1f}% "
              f"of a DARTS step (target <= 10%)")
    if base and "DARTS 2nd" in t:
        print(f"ratio: second / first order = {t['DARTS 2nd'] / base:.2f} (target <= 2.2)")
    if base and "DARTS bf16" in t:
        print(f"ratio: bf16 / fp32 DARTS step = {t['DARTS bf16'] / base:.2f}")
    for name in ("PC-DARTS K=2", "PC-DARTS K=4", "DARTS-", "beta-DARTS", "SDARTS-RS", "SDARTS-ADV"):
        if base and name in t:
            print(f"ratio: {name} / DARTS step = {t[name] / base:.2f}")


if __name__ == "__main__":
    main()
