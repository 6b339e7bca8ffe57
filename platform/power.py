"""``sddarts power``: can a testbed rank architectures at all? It retrains G random genotypes with
the proxy recipe at one seed, and one of them at R seeds, then compares the spread across
genotypes with the spread of one genotype across retrain seeds (the seed sets the initial weights,
the data order and the held-out split). A testbed ranks architectures only where the first is well
above the second: the F-test of the two variances says how sure that is."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from sddarts.platform import runs
from sddarts.platform.cluster import connect
from sddarts.platform.flags import add_config_flags
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs
from sddarts.platform.proxy import add_proxy_flags, proxy_settings
from sddarts.platform.trial import TRIAL_DRIVER_CPU
from sddarts.platform.tuner import build_tuner, fit_tuner, max_concurrent
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig


def add_parser(sub, help_preset: str = "") -> None:
    p = sub.add_parser("power", help="a testbed's power to rank architectures: proxy_acc's spread across random "
                       "genotypes against one genotype's spread across retrain seeds")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, "digits-demo", {"num_workers": 1}, help_preset=help_preset)
    p.add_argument("--genotypes", type=int, default=20, help="random genotypes retrained at seed 0 (default 20)")
    p.add_argument("--retrain-seeds", type=int, default=5, help="seeds the first genotype is retrained at (default 5)")
    add_proxy_flags(p.add_argument_group("proxy retrain (what is measured)"), default_help="3")
    add_run_flags(p, None)
    p.set_defaults(func=cmd_power)


def power_cells(genotypes: int, seeds: int) -> list[list[tuple[int, int, int]]]:
    """The trials, each one ``(draw_seed, draw, retrain_seed)`` retrain: draws 0..G-1 at seed 0,
    then draw 0 at seeds 1..R-1."""
    return [[(0, d, 0)] for d in range(genotypes)] + [[(0, 0, s)] for s in range(1, seeds)]


def power_stats(between: list[float], within: list[float]) -> dict[str, float]:
    """Standard deviations across genotypes and across seeds, their ratio, and the one-sided F-test
    of ``var(between) > var(within)``."""
    from scipy import stats

    def sd(xs: list[float]) -> float:
        m = sum(xs) / len(xs)
        return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan

    sd_b, sd_w = sd(between), sd(within)
    f = (sd_b / sd_w) ** 2 if sd_w and sd_w == sd_w else math.inf
    p = float(stats.f.sf(f, len(between) - 1, len(within) - 1)) if math.isfinite(f) else 0.0
    return {"sd_genotypes": sd_b, "sd_seeds": sd_w, "sd_ratio": sd_b / sd_w if sd_w else math.inf, "f": f,
            "p_f": p, "mean_genotypes": sum(between) / len(between), "min_genotypes": min(between),
            "max_genotypes": max(between), "n_genotypes": len(between), "n_seeds": len(within)}


def cmd_power(args: argparse.Namespace) -> int:
    ropts, base = check_inputs(args, SearchConfig, SEARCH_PRESETS, "power", restore_config=False)
    if args.genotypes < 2 or args.retrain_seeds < 2:
        raise ConfigError(f"genotypes and retrain_seeds must be >= 2 (got {args.genotypes}, {args.retrain_seeds})")
    proxy = proxy_settings(args, base, default_epochs=3)
    if not proxy["proxy_epochs"]:
        raise ConfigError("power measures proxy_acc: proxy_epochs must be >= 1")
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts power {ropts.name}: {args.genotypes} random genotypes in space {base.space} at seed 0, and the "
          f"first at seeds 0..{args.retrain_seeds - 1}; proxy {proxy['proxy_epochs']} epochs", flush=True)
    out = run_power(base, args.genotypes, args.retrain_seeds, ropts, resources, proxy)
    s = out["stats"]
    print(f"\npower {ropts.name} ({out['wall_s']:.0f}s): proxy_acc across {s['n_genotypes']} genotypes "
          f"{s['mean_genotypes']:.1f} (sd {s['sd_genotypes']:.2f}, range {s['min_genotypes']:.1f}-{s['max_genotypes']:.1f}); "
          f"one genotype across {s['n_seeds']} seeds sd {s['sd_seeds']:.2f}; ratio {s['sd_ratio']:.2f}, "
          f"F = {s['f']:.2f}, p = {s['p_f']:.3g}: "
          + ("this testbed ranks architectures" if s["p_f"] < 0.05 else
             "this testbed cannot tell architectures apart from retrain noise"))
    print(f"MLflow parent run id: {out['parent_run_id']}")
    return 0


def run_power(base: SearchConfig, genotypes: int, seeds: int, ropts: RunOptions, resources: dict[str, float],
              proxy: dict[str, int]) -> dict[str, Any]:
    """The power measurement as one grid of retrains under a parent run (``power.json``, metrics)."""
    import ray.tune

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    cells = power_cells(genotypes, seeds)
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "power", "space": base.space, "dataset": base.dataset})
    client, started = runs.client(uri), time.time()
    with runs.ending(uri, parent), runs.heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        sweep = {"metric": "proxy_acc", **proxy}
        tuner = build_tuner(base, ropts, exp_id, parent, sweep, {"retrains": ray.tune.grid_search(cells)}, ["retrains"],
                            len(cells), ray.tune.TuneConfig(max_concurrent_trials=max_concurrent(base, resources, 0)))
        results = fit_tuner(tuner, len(cells))
        acc = {tuple(map(tuple, r.config["retrains"]))[0]: r.metrics["proxy_acc"] for r in results
               if not r.error and r.metrics and r.metrics.get("proxy_acc") is not None}
        between = [acc[c] for c in acc if c[2] == 0]
        within = [acc[c] for c in acc if c[1] == 0]
        if len(between) < 2 or len(within) < 2:
            raise RuntimeError(f"too few retrains completed ({len(acc)} of {len(cells)})")
        stats = power_stats(between, within)
        client.log_text(parent, json.dumps({"stats": stats, "retrains": [[*c, a] for c, a in sorted(acc.items())]},
                                           indent=2), "power.json")
        for key, value in stats.items():
            if math.isfinite(value):
                client.log_metric(parent, key, value)
    runs.end_run(uri, parent, "FINISHED")
    return {"stats": stats, "parent_run_id": parent, "wall_s": time.time() - started}
