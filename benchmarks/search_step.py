"""Images per second of one search step (alpha step + w step, first order).

Runs plain DARTS and SD-DARTS with K = 1, 2, 3 teachers in one process, plus the reference
DARTS implementation (a port of ``model_search.py``, ``benchmarks/reference_darts.py``) at the
same config, and prints the ratios. Targets: SD step <= (1 + 0.35 K) x DARTS step, and our DARTS
step at least as fast as the reference.

    python benchmarks/search_step.py --C 16 --layers 8 --batch 32 --size 32 --channels 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_darts import ReferenceNetwork  # noqa: E402
from sddarts.search_spaces import Supernet  # noqa: E402
from sddarts.trainables.config import SearchConfig  # noqa: E402
from sddarts.trainables.search_step import SearchState, search_step  # noqa: E402
from sddarts.trainables.step_stats import StepStats  # noqa: E402


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


def ours(args, teachers: int):
    cfg = SearchConfig(C=args.C, layers=args.layers, batch_size=args.batch, vote_count=teachers,
                       sd_weight=1.0 if teachers else 0.0, teacher_interval=1)
    torch.manual_seed(0)
    state = SearchState.create(cfg, Supernet(args.C, 10, args.layers, args.channels).to(args.device))
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)
    for _ in range(teachers):  # fill the ring
        search_step(state, (x, y), (x, y), StepStats())
    assert len(state.ring) == teachers
    return lambda: search_step(state, (x, y), (x, y), StepStats())


def reference(args):
    """DARTS' first-order step: architect.step (val backward, alpha Adam), then w SGD + clip."""
    torch.manual_seed(0)
    net = ReferenceNetwork(args.C, 10, args.layers, args.channels).to(args.device)
    alphas = [net.alphas_normal, net.alphas_reduce]
    weights = [p for n, p in net.named_parameters() if not n.startswith("alphas")]
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)

    def step():
        a_opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        a_opt.step()
        w_opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    return step


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
    p.add_argument("--no-reference", action="store_true", help="skip the reference implementation")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"config: C={args.C} layers={args.layers} batch={args.batch} size={args.size} channels={args.channels} "
          f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    fns = {"DARTS (sddarts)": ours(args, 0), **{f"SD-DARTS K={k}": ours(args, k) for k in (1, 2, 3)}}
    if not args.no_reference:
        fns["DARTS (reference)"] = reference(args)
    t = time_round_robin(fns, args.warmup, args.steps, sync)
    base = t["DARTS (sddarts)"]
    for name, sec in t.items():
        line = f"{name:<22} {1000 * sec:9.1f} ms/step {args.batch / sec:9.1f} img/s"
        if name.startswith("SD-DARTS"):
            k = int(name[-1])
            ratio, target = sec / base, 1 + 0.35 * k
            line += f"  SD/DARTS {ratio:5.2f} (target <= {target:.2f}: {'ok' if ratio <= target else 'OVER'})"
        elif name == "DARTS (reference)":
            line += f"  sddarts speed-up {sec / base:5.2f}x (target >= 1.00)"
        print(line, flush=True)

if __name__ == "__main__":
    main()
