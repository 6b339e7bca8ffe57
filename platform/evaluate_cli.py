"""``sddarts evaluate`` and ``sddarts describe``, and the sweep's ``--evaluate-best``."""

from __future__ import annotations

import argparse
import sys
import time

from sddarts.platform import tracking
from sddarts.platform.flags import add_config_flags, config_from_args
from sddarts.trainables.config import EVAL_PRESETS, ConfigError, EvalConfig


def register(sub, run_flags) -> None:
    p = sub.add_parser("evaluate", help="retrain a genotype from scratch with Ray Train and register it in MLflow",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--search-run", metavar="RUN_ID", help="an MLflow search run (reads its genotype.json)")
    src.add_argument("--genotype", metavar="NAME_OR_FILE", help="a built-in (DARTS_V1, DARTS_V2) or a genotype JSON file")
    add_config_flags(p, EvalConfig, EVAL_PRESETS)
    run_flags(p, "continue the evaluation NAME from its last checkpoint")
    p.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("describe", help="a genotype's short form, parameters and FLOPs (trains nothing)")
    d.add_argument("genotype", help="a built-in name, a genotype JSON file, or a search run id")
    d.add_argument("--preset", choices=sorted(EVAL_PRESETS), default="cifar10-darts",
                   help="the network to build (channels, cells, dataset)")
    d.add_argument("--tracking-uri", default="", help="where to look up a search run id")
    d.set_defaults(func=cmd_describe)


def _print_size(size: dict) -> None:
    print(f"genotype: {size['genotype']}")
    print(f"params (without auxiliary head): {size['params']:,} ({size['params_m']:.2f}M)")
    print(f"FLOPs per image: {size['flops']:,} ({size['flops'] / 1e6:.1f}M; MACs {size['flops'] / 2e6:.1f}M)")


def cmd_describe(args: argparse.Namespace) -> int:
    from sddarts.platform.evaluate import describe, resolve_genotype

    uri = tracking.resolve_tracking_uri(args.tracking_uri or None)
    source = resolve_genotype(args.genotype, uri)
    cfg = EvalConfig.from_dict(dict(EVAL_PRESETS[args.preset])).validate()
    print(f"network: {args.preset} ({cfg.dataset}, C={cfg.C}, {cfg.layers} cells)")
    _print_size(describe(source.genotype, cfg))
    return 0


def evaluate(cfg: EvalConfig, genotype_spec: str, opts) -> dict:
    from sddarts.platform.cluster import connect
    from sddarts.platform.evaluate import resolve_genotype, run_evaluation
    from sddarts.trainables.data import check_available

    check_available(cfg.dataset, cfg.data_dir, cfg.download)
    tracking.check_tracking(opts.tracking_uri)
    source = resolve_genotype(genotype_spec, opts.tracking_uri)
    connect(opts.address, cfg)
    print(f"sddarts evaluate {opts.name}: {source.genotype.short()} on {cfg.dataset}, C={cfg.C}, {cfg.layers} cells, "
          f"{cfg.epochs} epochs, {cfg.num_workers} worker(s)", flush=True)
    return run_evaluation(cfg, source, opts)


def _report(out: dict, uri: str) -> None:
    print(f"\ntest accuracy: {out['test_acc']:.2f}%")
    _print_size(out)
    print(f"registered: models:/{out['model']}/{out['version']}")
    print(f"MLflow run id: {out['run_id']}")
    print(f"browse: {tracking.run_url(uri, out['experiment_id'], out['run_id'])}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sddarts.platform.search import RunOptions, check_resumable

    args.preset = args.preset or "digits-demo"
    cfg = config_from_args(EvalConfig, EVAL_PRESETS, args)
    opts = RunOptions(name=args.resume or args.name or time.strftime("evaluate-%Y%m%d-%H%M%S"),
                      tracking_uri=args.tracking_uri, experiment=args.experiment, storage_path=args.storage_path,
                      address=args.address, resume=bool(args.resume))
    if opts.resume:
        check_resumable(opts)
    try:
        out = evaluate(cfg, args.search_run or args.genotype, opts)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: sddarts evaluate --resume {opts.name} ...", file=sys.stderr)
        return 130
    _report(out, opts.tracking_uri)
    return 0


def evaluate_best_of_sweep(args: argparse.Namespace, summary: dict, sweep_opts) -> dict:
    """Retrains the sweep's best genotype with the evaluation preset of its dataset and attaches the
    result to the sweep's parent run."""
    from sddarts.platform.search import RunOptions

    dataset = summary["best"]["dataset"]
    preset = "digits-demo" if dataset == "digits" else "cifar10-darts"
    values = dict(EVAL_PRESETS[preset], dataset=dataset, data_dir=summary["best"]["data_dir"],
                  num_workers=summary["best"]["num_workers"], cpus_per_worker=summary["best"]["cpus_per_worker"],
                  gpus_per_worker=summary["best"]["gpus_per_worker"], seed=summary["best"]["seed"])
    cfg = EvalConfig.from_dict(values).validate()
    opts = RunOptions(name=f"{sweep_opts.name}-best-eval", tracking_uri=sweep_opts.tracking_uri,
                      experiment=sweep_opts.experiment, storage_path=sweep_opts.storage_path, address=sweep_opts.address)
    out = evaluate(cfg, summary["best_run_id"], opts)
    client = tracking.client(sweep_opts.tracking_uri)
    parent = summary["parent_run_id"]
    client.log_metric(parent, "best_test_acc", out["test_acc"])
    client.log_metric(parent, "best_params_m", out["params_m"])
    client.set_tag(parent, "best_eval_run_id", out["run_id"])
    client.set_tag(parent, "best_model", f"models:/{out['model']}/{out['version']}")
    _report(out, sweep_opts.tracking_uri)
    return out
