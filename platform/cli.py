"""The ``sddarts`` command line: search, sweep, evaluate, describe, compare, ui."""

from __future__ import annotations

import argparse
import sys

from sddarts.platform import tracking
from sddarts.platform.flags import add_config_flags, config_from_args
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig


def _run_flags(parser: argparse.ArgumentParser, resume_help: str) -> None:
    g = parser.add_argument_group("where it runs and logs")
    g.add_argument("--name", default="", help="run name (default: timestamped); the Train run and MLflow run share it")
    g.add_argument("--resume", metavar="NAME", default=None, help=resume_help)
    g.add_argument("--tracking-uri", default="", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)")
    g.add_argument("--experiment", default=tracking.DEFAULT_EXPERIMENT, help="MLflow experiment name")
    g.add_argument("--storage-path", default="sddarts_runs", help="where Ray keeps checkpoints (a shared path or URI on a cluster)")
    g.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sddarts", description="Self-Distillation DARTS on Ray, tracked in MLflow.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("search", help="run one SD-DARTS search (a Ray Train job) and derive a genotype",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(p, SearchConfig, SEARCH_PRESETS)
    _run_flags(p, "continue the search NAME from its last checkpoint, in the same MLflow run")
    p.set_defaults(func=cmd_search, preset_default="digits-demo")

    from sddarts.platform import commands

    commands.register(sub, _run_flags)
    return parser


def cmd_search(args: argparse.Namespace) -> int:
    from sddarts.platform.cluster import connect
    from sddarts.platform.search import RunOptions, check_resumable, run_search
    from sddarts.trainables.data import check_available

    args.preset = args.preset or args.preset_default
    cfg = config_from_args(SearchConfig, SEARCH_PRESETS, args)
    opts = RunOptions(name=args.resume or args.name, tracking_uri=args.tracking_uri, experiment=args.experiment,
                      storage_path=args.storage_path, address=args.address, resume=bool(args.resume))
    check_available(cfg.dataset, cfg.data_dir, cfg.download)
    if opts.resume:
        check_resumable(opts)
    tracking.check_tracking(opts.tracking_uri)
    connect(opts.address, cfg)
    print(f"sddarts search {opts.name}: {cfg.dataset}, {cfg.num_workers} worker(s), {cfg.epochs} epochs, "
          f"{'SD-DARTS' if cfg.distills else 'plain DARTS'} (sd_weight={cfg.sd_weight:g}, vote_count={cfg.vote_count}, "
          f"teacher_interval={cfg.teacher_interval}, T={cfg.temperature:g}, voting={cfg.voting})", flush=True)
    try:
        out = run_search(cfg, opts)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the MLflow run is marked KILLED. Resume with: sddarts search --resume {opts.name}",
              file=sys.stderr)
        return 130
    m = out.metrics
    print(f"\nsearch {out.name} finished: val_acc={m.get('val_acc', float('nan')):.2f}% "
          f"derived_val_acc={m.get('derived_val_acc', float('nan')):.2f}%")
    print(f"genotype: {out.genotype.short() if out.genotype else '?'}")
    if out.genotype:
        print(out.genotype.to_json(indent=None))
    print(f"MLflow run id: {out.run_id}")
    print(f"browse: {tracking.run_url(opts.tracking_uri, out.experiment_id, out.run_id)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, tracking.TrackingError) as exc:
        print(f"sddarts: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # data errors, genotype errors, failed runs: one clear line
        from sddarts.search_spaces.genotypes import GenotypeError
        from sddarts.trainables.data import DataError

        if isinstance(exc, (DataError, GenotypeError)):
            print(f"sddarts: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
