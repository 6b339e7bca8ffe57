"""One MLflow run around one Ray Train ``TorchTrainer``: ``run_search`` and ``run_evaluation``, and
what they return. Ray must already be initialised (``cluster.connect``); the run is created (or
reopened to resume) here and always ended, FINISHED, KILLED or FAILED. A sweep's trials run the
same two functions, so a trial's MLflow run is the search's own run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sddarts.platform.options import RunOptions
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.heartbeat import heartbeat
from sddarts.platform.tracking.registry import GenotypeSource, describe, model_name, register_model
from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.config import EvalConfig, SearchConfig


@dataclass
class SearchResult:
    """A finished search: its MLflow run, the derived genotype, the last epoch's figures and
    ``history``, one dict of figures per epoch (``epoch`` included; filled by ``sddarts.search``)."""

    name: str
    run_id: str
    experiment_id: str
    genotype: Any
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class EvalResult:
    """A finished evaluation: its run, the registered model's URI (raw images in, see
    ``sddarts export``) and the final figures (``test_acc``, ``params_m``, ...)."""

    name: str
    run_id: str
    model_uri: str | None
    metrics: dict[str, Any]


def worker_run(opts: RunOptions, run_id: str) -> dict[str, Any]:
    """What the Train workers know of their MLflow run: its name and id, the store, how often rank 0
    samples the system metrics and prints progress inside an epoch (0: never)."""
    return {"name": opts.name, "tracking_uri": opts.tracking_uri, "run_id": run_id,
            "system_metrics_s": opts.system_metrics_interval if opts.system_metrics else 0.0,
            "progress_s": opts.progress_interval}


def search_tags(cfg: SearchConfig, kind: str = "search") -> dict[str, str]:
    return {"kind": kind, "space": cfg.space, "dataset": cfg.dataset, "seed": str(cfg.seed),
            "method": "sd-darts" if cfg.distills else "darts"}


def run_search(cfg: SearchConfig, opts: RunOptions, parent_run_id: str | None = None,
               callbacks: list | None = None, extra_tags: dict[str, str] | None = None,
               own_status: bool = True) -> SearchResult:
    """Runs (or resumes) one search; with ``own_status`` logs its final records and ends its MLflow
    run FINISHED (KILLED or FAILED on interrupt or error).

    A run is resumed from the latest checkpoint under ``storage_path/name`` whenever one exists. A
    sweep trial passes ``own_status=False``: Tune may stop it at any report, so the sweep's
    callback records and ends its run instead.
    """
    from sddarts.trainables.workers.fatal import raise_if_fatal
    from sddarts.trainables.workers.search_loop import make_search_trainer
    from sddarts.trainables.workers.search_records import log_final_records

    uri = opts.tracking_uri
    exp_id = runs.experiment_id(uri, opts.experiment)
    tags = {**search_tags(cfg), **(extra_tags or {})}
    run_id = runs.open_run(uri, exp_id, opts.name, tags, parent_run_id, opts.resume)
    run = {**worker_run(opts, run_id), "attempt_log": os.environ.get("SDDARTS_ATTEMPT_LOG", "")}
    trainer = make_search_trainer(cfg, run, opts.storage_path, callbacks, opts.placement_group_cleaner)
    if not own_status:
        with heartbeat(uri, run_id):
            result = trainer.fit()
        raise_if_fatal(result.metrics, uri, run_id)
    else:
        with runs.ending(uri, run_id), heartbeat(uri, run_id):
            result = trainer.fit()
            raise_if_fatal(result.metrics, uri, run_id)  # a config or data error: failed on its first attempt
            log_final_records(uri, run_id, result.checkpoint)
        runs.end_run(uri, run_id, "FINISHED")
    metrics = dict(result.metrics or {})
    genotype = genotype_from_json(metrics["genotype_json"]) if "genotype_json" in metrics else None
    return SearchResult(opts.name, run_id, exp_id, genotype, metrics)


def run_evaluation(cfg: EvalConfig, source: GenotypeSource, opts: RunOptions, register: bool = True,
                   kind: str = "evaluate") -> dict[str, Any]:
    """Retrains ``source.genotype`` from scratch in an MLflow run (a child of its search run, if
    any); with ``register`` also logs the trained model and registers it. Returns the final
    metrics, size, run id and the registered model (``model``, ``version``, ``model_uri``)."""
    from sddarts.trainables.workers.checkpoint import STATE_FILE, load_state
    from sddarts.trainables.workers.eval_loop import build_network, make_eval_trainer
    from sddarts.trainables.workers.fatal import raise_if_fatal

    uri = opts.tracking_uri
    client = runs.client(uri)
    exp_id = runs.experiment_id(uri, opts.experiment)
    genotype = source.genotype
    tags = {"kind": kind, "space": genotype.space, "dataset": cfg.dataset, "genotype": genotype.short(),
            "genotype_source": source.label}
    parent = None
    if source.search_run_id:  # shown as a child of its search run, in the search's experiment
        exp_id = client.get_run(source.search_run_id).info.experiment_id
        tags["search_run_id"] = parent = source.search_run_id
    run_id = runs.open_run(uri, exp_id, opts.name, tags, parent, opts.resume)
    run = worker_run(opts, run_id)
    out: dict[str, Any] = {"run_id": run_id, "experiment_id": exp_id, "model": model_name(cfg, genotype.space)}
    with runs.ending(uri, run_id), heartbeat(uri, run_id):
        client.log_text(run_id, genotype.to_json(), "genotype.json")
        result = make_eval_trainer(cfg, genotype, run, opts.storage_path, opts.placement_group_cleaner).fit()
        raise_if_fatal(result.metrics, uri, run_id)  # a config, data or genotype error: failed on its first attempt
        out.update(result.metrics)
        if register:
            size = describe(genotype, cfg)
            net = build_network(genotype, cfg)
            with result.checkpoint.as_directory() as d:
                net.load_state_dict(load_state(os.path.join(d, STATE_FILE))["net"])
            client.log_metric(run_id, "params_m", size["params_m"])
            client.log_metric(run_id, "flops_m", size["flops"] / 1e6)
            out.update(size, **register_model(uri, run_id, net, cfg, genotype, {
                "genotype": genotype.short(), "search_run_id": source.search_run_id or "",
                "test_acc": f"{out['test_acc']:.2f}", "params": size["params"], "params_m": f"{size['params_m']:.3f}",
                "flops": size["flops"], "eval_run_id": run_id}))
    runs.end_run(uri, run_id, "FINISHED", {"model_version": out["version"]} if register else None)
    return out


def history_of(tracking_uri: str, run_id: str) -> list[dict[str, float]]:
    """Every metric of a run by epoch (MLflow's step), oldest first. The system metrics
    (``system/...``) are left out: their steps count samples, not epochs."""
    client = runs.client(tracking_uri)
    by_step: dict[int, dict[str, float]] = {}
    for key in [k for k in client.get_run(run_id).data.metrics if not k.startswith("system/")]:
        for m in client.get_metric_history(run_id, key):
            by_step.setdefault(m.step, {"epoch": m.step})[key] = m.value
    return [by_step[step] for step in sorted(by_step)]
