"""The random-sampling arm of ``sddarts compare`` and the trials of ``sddarts power``: genotypes
drawn uniformly from the space (``search_spaces.random_arch``), each retrained with the same proxy
recipe as the searched ones, under one MLflow run (a child of the experiment's parent run) whose
children are the retrains."""

from __future__ import annotations

import json
from typing import Any

from sddarts.platform import runs
from sddarts.platform.launch import RunOptions
from sddarts.platform.proxy import proxy_config
from sddarts.trainables.config import SearchConfig

RANDOM = "random"  # the arm's variant name: proxy_acc is the mean of the seed's draws
RANDOM_BEST = "random-best"  # the best of the seed's draws (what a random search of N would keep)


def retrain_random(cfg: SearchConfig, sweep: dict[str, Any], retrains: list[tuple[int, int, int]], name: str,
                   tags: dict[str, str]) -> dict[str, Any]:
    """Retrains each ``(draw_seed, draw, retrain_seed)`` genotype with the sweep's proxy recipe;
    returns the figures a trial reports: ``proxy_acc`` (the mean), ``random_best_proxy_acc`` and
    every value (``random_proxy_accs``, JSON)."""
    from sddarts.platform.evaluate import run_evaluation
    from sddarts.platform.registry import GenotypeSource
    from sddarts.search_spaces.random_arch import random_genotype

    uri = sweep["tracking_uri"]
    exp_id = runs.experiment_id(uri, sweep["experiment"])
    run_id = runs.open_run(uri, exp_id, name, {"kind": "random", **tags}, sweep["parent_run_id"], True)
    client, accs, genotypes = runs.client(uri), [], []
    with runs.ending(uri, run_id):
        for draw_seed, draw, seed in retrains:
            genotype = random_genotype(cfg.space, draw_seed, draw)
            genotypes.append(genotype.to_dict())
            proxy_cfg = proxy_config(cfg.replace(seed=seed), sweep["proxy_epochs"], sweep.get("proxy_C", 0),
                                     sweep.get("proxy_layers", 0))
            opts = RunOptions(name=f"{name}-draw{draw_seed}.{draw}-seed{seed}", tracking_uri=uri,
                              experiment=sweep["experiment"], storage_path=sweep["storage_path"], resume=True)
            out = run_evaluation(proxy_cfg, GenotypeSource(genotype, run_id, f"random draw {draw} of seed {draw_seed}"),
                                 opts, register=False, kind="proxy")
            accs.append(float(out["val_acc"]))
        client.log_text(run_id, json.dumps({"retrains": retrains, "genotypes": genotypes, "proxy_acc": accs},
                                           indent=2), "random_draws.json")
        final = {"epoch": cfg.epochs, "proxy_acc": sum(accs) / len(accs), "random_best_proxy_acc": max(accs),
                 "random_proxy_accs": json.dumps(accs), "mlflow_run_id": run_id}
        for key in ("proxy_acc", "random_best_proxy_acc"):
            client.log_metric(run_id, key, final[key])
    runs.end_run(uri, run_id, "FINISHED")
    return final
