"""``sddarts search``: one search from the driver, an MLflow run around a Ray Train ``TorchTrainer``.

``run_search`` also runs each trial of ``sddarts sweep``, so that a trial's MLflow run is the
search's own run.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from sddarts.platform import runs
from sddarts.platform.flags import add_config_flags
from sddarts.platform.shell import command_name
from sddarts.platform.cluster import connect
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs
from sddarts.trainables.fatal import raise_if_fatal
from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig


@dataclass
class SearchOutcome:
    name: str
    run_id: str
    experiment_id: str
    metrics: dict[str, Any] = field(default_factory=dict)
    genotype: Any = None  # the genotype the search returns (any space)


def add_parser(sub, help_preset: str = "") -> None:
    p = sub.add_parser("search", help="run one SD-DARTS search (a Ray Train job) and derive a genotype")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, "digits-demo", help_preset=help_preset)
    add_run_flags(p, "continue the search NAME from its last checkpoint, in the same MLflow run")
    p.set_defaults(func=cmd_search)


def search_from_args(args: argparse.Namespace) -> tuple[RunOptions, SearchOutcome]:
    """The search the flags describe, checked, then run (the CLI's and ``sddarts.search``'s path)."""
    opts, cfg = check_inputs(args, SearchConfig, SEARCH_PRESETS, "search")
    connect(opts.address, cfg)
    print(f"sddarts search {opts.name}: {cfg.dataset}, {cfg.num_workers} worker(s), {cfg.epochs} epochs, "
          f"{'SD-DARTS' if cfg.distills else 'plain DARTS'} (sd_weight={cfg.sd_weight:g}, vote_count={cfg.vote_count}, "
          f"teacher_interval={cfg.teacher_interval}, T={cfg.temperature:g}, voting={cfg.voting})", flush=True)
    return opts, run_search(cfg, opts)


def cmd_search(args: argparse.Namespace) -> int:
    try:
        opts, out = search_from_args(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the MLflow run is marked KILLED. Resume with: {command_name()} search --resume '{args.name}' (same --storage-path and --tracking-uri)",
              file=sys.stderr)
        return 130
    m = out.metrics
    print(f"\nsearch {out.name} finished: val_acc={m.get('val_acc', float('nan')):.2f}% "
          f"derived_val_acc={m.get('derived_val_acc', float('nan')):.2f}% (held-out split)")
    print(f"genotype: {out.genotype.short() if out.genotype else '?'}")
    if out.genotype:
        print(out.genotype.to_json(indent=None))
    print(f"MLflow run id: {out.run_id}")
    print(f"browse: {runs.run_url(opts.tracking_uri, out.experiment_id, out.run_id)}")
    return 0


def search_tags(cfg: SearchConfig, kind: str = "search") -> dict[str, str]:
    return {"kind": kind, "space": cfg.space, "dataset": cfg.dataset, "seed": str(cfg.seed),
            "method": "sd-darts" if cfg.distills else "darts"}


def log_records(uri: str, run_id: str, checkpoint) -> None:
    """Logs a search's final records (pictures, alpha, checkpoint) from ``checkpoint`` (a
    ``ray.train.Checkpoint``, local or remote; None: nothing to log)."""
    if checkpoint is None:
        return
    from sddarts.trainables.run_logger import RunLogger
    from sddarts.trainables.search_records import log_search_records

    with checkpoint.as_directory() as d:
        log_search_records(RunLogger(uri, run_id), d)


def run_search(cfg: SearchConfig, opts: RunOptions, parent_run_id: str | None = None,
               callbacks: list | None = None, extra_tags: dict[str, str] | None = None,
               own_status: bool = True) -> SearchOutcome:
    """Runs (or resumes) one search; with ``own_status`` logs its final records and ends its MLflow
    run FINISHED (KILLED or FAILED on interrupt or error).

    Ray must already be initialised. A run is resumed from the latest checkpoint under
    ``storage_path/name`` whenever one exists. A sweep trial passes ``own_status=False``: Tune
    may stop it at any report, so the sweep's callback records and ends its run instead.
    """
    from sddarts.trainables.search_loop import make_search_trainer

    exp_id = runs.experiment_id(opts.tracking_uri, opts.experiment)
    tags = {**search_tags(cfg), **(extra_tags or {})}
    run_id = runs.open_run(opts.tracking_uri, exp_id, opts.name, tags, parent_run_id, opts.resume)
    run = {"name": opts.name, "tracking_uri": opts.tracking_uri, "run_id": run_id,
           "attempt_log": os.environ.get("SDDARTS_ATTEMPT_LOG", "")}
    trainer = make_search_trainer(cfg, run, opts.storage_path, callbacks)
    if not own_status:
        with runs.heartbeat(opts.tracking_uri, run_id):
            result = trainer.fit()
        raise_if_fatal(result.metrics, opts.tracking_uri, run_id)
    else:
        with runs.ending(opts.tracking_uri, run_id), runs.heartbeat(opts.tracking_uri, run_id):
            result = trainer.fit()
            raise_if_fatal(result.metrics, opts.tracking_uri, run_id)  # a config or data error: failed on its first attempt
            log_records(opts.tracking_uri, run_id, result.checkpoint)
        runs.end_run(opts.tracking_uri, run_id, "FINISHED")
    metrics = dict(result.metrics or {})
    genotype = genotype_from_json(metrics["genotype_json"]) if "genotype_json" in metrics else None
    return SearchOutcome(opts.name, run_id, exp_id, metrics, genotype)
