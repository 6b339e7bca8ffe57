"""Subcommands beyond ``search``: sweep, evaluate, describe, compare, ui."""

from __future__ import annotations

import argparse
import sys
import time

from sddarts.platform import tracking
from sddarts.platform.flags import add_config_flags, config_from_args
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig


def register(sub, run_flags) -> None:
    p = sub.add_parser("sweep", help="tune SD-DARTS' knobs: Ray Tune + Optuna (TPE) + ASHA, one search per trial",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(p, SearchConfig, SEARCH_PRESETS)
    g = p.add_argument_group("sweep")
    g.add_argument("--trials", type=int, default=8, help="number of trials (searches)")
    g.add_argument("--workers-per-trial", dest="num_workers", type=int, default=argparse.SUPPRESS,
                   help="Train workers per trial (same as --num-workers; default 1 in a sweep)")
    g.add_argument("--space-file", default=None, help="YAML/JSON file of distributions per config field (default: sd_weight, "
                   "teacher_interval, vote_count, temperature)")
    g.add_argument("--baseline", action="store_true", help="evaluate plain DARTS first (points_to_evaluate)")
    g.add_argument("--no-asha", dest="asha", action="store_false", help="run every trial to the end")
    g.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs before a trial can be stopped")
    g.add_argument("--reduction-factor", type=int, default=2, help="ASHA: keep 1/rf of trials at each rung")
    g.add_argument("--max-concurrent", type=int, default=0, help="cap on trials at once (0: what the cluster holds)")
    g.add_argument("--metric", default="derived_val_acc", help="what the sweep optimises")
    g.add_argument("--mode", choices=("max", "min"), default="max")
    g.add_argument("--evaluate-best", action="store_true", help="retrain the best genotype from scratch at the end")
    run_flags(p, "restore the interrupted sweep NAME (Tune's restore); finished trials are not rerun")
    p.set_defaults(func=cmd_sweep)

    c = sub.add_parser("compare", help="plain DARTS vs SD-DARTS with the same seeds and settings (a grid sweep)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(c, SearchConfig, SEARCH_PRESETS)
    c.add_argument("--seeds", type=int, default=2, help="seeds 0..K-1 for each method")
    run_flags(c, "(not supported for compare)")
    c.set_defaults(func=cmd_compare)

    u = sub.add_parser("ui", help="serve the MLflow UI for the tracking store on 127.0.0.1")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db")
    u.set_defaults(func=cmd_ui)

    from sddarts.platform import evaluate_cli

    evaluate_cli.register(sub, run_flags)


def _check_int(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name} must be >= {low} (got {value})")


def cmd_sweep(args: argparse.Namespace) -> int:
    from sddarts.platform.cluster import connect
    from sddarts.platform.search import RunOptions, check_resumable
    from sddarts.platform.space import DEFAULT_SPACE, load_space, to_distributions
    from sddarts.platform.sweep import TRIAL_DRIVER_CPU, SweepOptions, run_sweep
    from sddarts.trainables.data import check_available

    args.preset = args.preset or "digits-demo"
    base = config_from_args(SearchConfig, SEARCH_PRESETS, args, base={"num_workers": 1})
    for name, low in (("trials", 1), ("grace_period", 1), ("reduction_factor", 2), ("max_concurrent", 0)):
        _check_int(name, getattr(args, name), low)
    space = load_space(args.space_file) if args.space_file else DEFAULT_SPACE
    dists = to_distributions(space, base)
    sopts = SweepOptions(trials=args.trials, metric=args.metric, mode=args.mode, seed=base.seed, baseline=args.baseline,
                         asha=args.asha, grace_period=args.grace_period, reduction_factor=args.reduction_factor,
                         max_concurrent=args.max_concurrent, space=space)
    ropts = RunOptions(name=args.resume or args.name or time.strftime("sweep-%Y%m%d-%H%M%S"),
                       tracking_uri=args.tracking_uri, experiment=args.experiment, storage_path=args.storage_path,
                       address=args.address, resume=bool(args.resume))
    check_available(base.dataset, base.data_dir, base.download)
    if ropts.resume:
        check_resumable(ropts)
    tracking.check_tracking(ropts.tracking_uri)
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts sweep {ropts.name}: {sopts.trials} trials over {', '.join(dists)}; optimising {sopts.metric} "
          f"({sopts.mode}); {base.num_workers} worker(s) x {base.cpus_per_worker:g} CPU per trial", flush=True)
    try:
        summary = run_sweep(base, dists, sopts, ropts, resources)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: sddarts sweep --resume {ropts.name} "
              f"(same --storage-path and --tracking-uri)", file=sys.stderr)
        return 130
    print(f"\nsweep {ropts.name} finished in {summary['wall_s']:.0f}s: {summary['trials']} trials, "
          f"{summary['errors']} errors, up to {summary['concurrency']} at once")
    if summary["best"] is None:
        print("no trial reported the metric", file=sys.stderr)
        return 1
    knobs = {k: summary["best"][k] for k in dists}
    print(f"best {sopts.metric} = {summary['best_value']:.4g} with {knobs}")
    print(f"best genotype: {summary['genotype']}")
    print(f"best search run: {summary['best_run_id']}")
    print(f"MLflow parent run id: {summary['parent_run_id']}")
    print(f"browse: {tracking.run_url(ropts.tracking_uri, summary['experiment_id'], summary['parent_run_id'])}")
    if args.evaluate_best:
        from sddarts.platform.evaluate_cli import evaluate_best_of_sweep

        evaluate_best_of_sweep(args, summary, ropts)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from sddarts.platform.cluster import connect
    from sddarts.platform.compare import run_compare
    from sddarts.platform.search import RunOptions
    from sddarts.platform.sweep import TRIAL_DRIVER_CPU
    from sddarts.trainables.data import check_available

    args.preset = args.preset or "digits-demo"
    base = config_from_args(SearchConfig, SEARCH_PRESETS, args, base={"num_workers": 1})
    _check_int("seeds", args.seeds, 1)
    if not base.distills:
        raise ConfigError("compare needs an SD-DARTS config to compare with DARTS: sd_weight > 0 and vote_count > 0")
    if args.resume:
        raise ConfigError("resume is not supported for compare; run it again")
    ropts = RunOptions(name=args.name or time.strftime("compare-%Y%m%d-%H%M%S"), tracking_uri=args.tracking_uri,
                       experiment=args.experiment, storage_path=args.storage_path, address=args.address)
    check_available(base.dataset, base.data_dir, base.download)
    tracking.check_tracking(ropts.tracking_uri)
    resources = connect(ropts.address, base, TRIAL_DRIVER_CPU)
    print(f"sddarts compare {ropts.name}: DARTS vs SD-DARTS, seeds 0..{args.seeds - 1}, {base.epochs} epochs", flush=True)
    try:
        out = run_compare(base, args.seeds, ropts, resources)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print(f"\ncompare {ropts.name} finished in {out['wall_s']:.0f}s ({out['errors']} errors); final epoch, mean (std) over seeds:")
    print(out["summary"].round(4).to_string())
    print(f"MLflow parent run id: {out['parent_run_id']}")
    print(f"browse: {tracking.run_url(ropts.tracking_uri, out['experiment_id'], out['parent_run_id'])}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Serves the MLflow UI over the configured store, bound to 127.0.0.1."""
    import os
    import shutil

    uri = tracking.resolve_tracking_uri(args.tracking_uri or None)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking server already serves its UI: {uri}")
        return 0
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}  (Ctrl-C to stop)", flush=True)
    os.execv(mlflow_bin, [mlflow_bin, "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
                          "--port", str(args.port), "--workers", "1"])
    return 0
