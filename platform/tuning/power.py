"""``sddarts power``: can a testbed rank architectures at all? It retrains G random genotypes with
the proxy recipe at one seed, and one of them at R seeds, then compares the spread across
genotypes with the spread of one genotype across retrain seeds (the seed sets the initial weights,
the data order and the held-out split). A testbed ranks architectures only where the first is well
above the second: the F-test of the two variances says how sure that is."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from sddarts.platform.cluster import connect
from sddarts.platform.options import TRIAL_DEFAULTS, PowerOptions, RunOptions
from sddarts.platform.preflight import check_inputs
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.heartbeat import heartbeat
from sddarts.platform.tuning.experiment import TRIAL_DRIVER_CPU, build_tuner, fit_tuner, max_concurrent
from sddarts.platform.tuning.proxy import proxy_settings
from sddarts.platform.tuning.trial import search_trial
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig


@dataclass
class PowerResult:
    """A finished power measurement: ``stats`` (the spreads, their ratio, the F-test) and its run."""

    name: str
    parent_run_id: str
    stats: dict[str, float]
    wall_s: float


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


def power(preset: str, fields: dict[str, Any], options: PowerOptions, run: RunOptions) -> PowerResult:
    """The power of ``preset`` with ``fields`` to rank architectures: checked, then run."""
    options.check()
    run, base = check_inputs(SearchConfig, SEARCH_PRESETS, preset, fields, run, "power", TRIAL_DEFAULTS,
                             restore_config=False)
    proxy = proxy_settings(options, base, default_epochs=3)
    if not proxy["proxy_epochs"]:
        raise ConfigError("power measures proxy_acc: proxy_epochs must be >= 1")
    resources = connect(run.address or None, base, TRIAL_DRIVER_CPU)
    print(f"sddarts power {run.name}: {options.genotypes} random genotypes in space {base.space} at seed 0, and the "
          f"first at seeds 0..{options.retrain_seeds - 1}; proxy {proxy['proxy_epochs']} epochs", flush=True)
    out = run_power(base, options.genotypes, options.retrain_seeds, run, resources, proxy)
    return PowerResult(run.name, out["parent_run_id"], out["stats"], out["wall_s"])


def run_power(base: SearchConfig, genotypes: int, seeds: int, ropts: RunOptions, resources: dict[str, float],
              proxy: dict[str, int]) -> dict[str, Any]:
    """The power measurement as one grid of retrains under a parent run (``power.json``, metrics)."""
    import ray.tune

    uri = ropts.tracking_uri
    exp_id = runs.experiment_id(uri, ropts.experiment)
    cells = power_cells(genotypes, seeds)
    parent = runs.open_run(uri, exp_id, ropts.name, {"kind": "power", "space": base.space, "dataset": base.dataset})
    client, started = runs.client(uri), time.time()
    with runs.ending(uri, parent), heartbeat(uri, parent):
        client.log_text(parent, json.dumps(base.to_dict(), indent=2), "base_config.json")
        sweep = {"metric": "proxy_acc", **proxy}
        tuner = build_tuner(search_trial, base, ropts, exp_id, parent, sweep, {"retrains": ray.tune.grid_search(cells)}, ["retrains"],
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
