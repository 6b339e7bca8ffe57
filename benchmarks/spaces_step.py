"""Milliseconds per search step (first order, plain DARTS) in every search space, timed in turns,
with each space's supernet size and its ratio to the full DARTS space. Target: S2's step (2 ops
per edge) cheaper than the DARTS space's (8 ops per edge).

    python benchmarks/spaces_step.py --C 16 --layers 8 --batch 32 --size 32 --channels 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_step import time_round_robin  # noqa: E402
from sddarts.search_spaces import SPACES, get_space  # noqa: E402
from sddarts.trainables.config import SearchConfig  # noqa: E402
from sddarts.trainables.sd_darts.search_step import SearchState, search_step  # noqa: E402
from sddarts.trainables.sd_darts.step_stats import StepStats  # noqa: E402


def step_of(space: str, args):
    layers = args.nb201_layers if space == "nb201" else args.layers
    cfg = SearchConfig(space=space, C=args.C, layers=layers, batch_size=args.batch, sd_weight=0.0, vote_count=0)
    torch.manual_seed(0)
    net = get_space(space).supernet(args.C, 10, layers, args.channels).to(args.device)
    state = SearchState.create(cfg, net)
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)
    return (lambda: search_step(state, (x, y), (x, y), StepStats())), sum(p.numel() for p in net.w_parameters())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--nb201-layers", type=int, default=2, help="NAS-Bench-201 cells per stage")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"config: C={args.C} layers={args.layers} (nb201: {args.nb201_layers} per stage) batch={args.batch} "
          f"size={args.size} device={args.device} threads={torch.get_num_threads()}")
    steps = {name: step_of(name, args) for name in SPACES}
    t = time_round_robin({name: fn for name, (fn, _) in steps.items()}, args.warmup, args.steps, sync)
    for name, sec in t.items():
        print(f"{name:<6} {1000 * sec:8.1f} ms/step  {steps[name][1]:>9,} w  {sec / t['darts']:.2f}x darts")
    ok = t["s2"] < t["darts"]
    print(f"S2 step {t['s2'] / t['darts']:.2f}x the DARTS space's: {'OK' if ok else 'NOT cheaper'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
