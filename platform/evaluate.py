"""``sddarts evaluate`` and ``sddarts describe``: retrain a genotype from scratch with Ray Train,
log the trained model to MLflow and register it; or just size it. Also the sweep's
``--evaluate-best`` and its proxy retrain of every completed trial."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sddarts.platform import runs
from sddarts.platform.flags import add_config_flags
from sddarts.platform.shell import command_name
from sddarts.platform.cluster import connect
from sddarts.platform.launch import RunOptions, add_run_flags, check_inputs
from sddarts.platform.registry import GenotypeSource, check_network, describe, model_name, register_model, resolve_genotype
from sddarts.trainables.config import EVAL_PRESETS, EvalConfig


def add_parser(sub, help_preset: str = "") -> None:
    p = sub.add_parser("evaluate", help="retrain a genotype from scratch with Ray Train and register it in MLflow")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--search-run", metavar="RUN", help="an MLflow search run, by id or name (reads its genotype.json)")
    src.add_argument("--genotype", metavar="NAME_OR_FILE", help="a built-in (DARTS_V1, DARTS_V2), a genotype JSON file "
                     "of any space, or a NAS-Bench-201 string '|nor_conv_3x3~0|+|...|'")
    add_config_flags(p, EvalConfig, EVAL_PRESETS, "digits-demo", help_preset=help_preset)
    add_run_flags(p, "continue the evaluation NAME from its last checkpoint")
    p.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("describe", help="a genotype's short form, parameters and FLOPs (trains nothing)")
    d.add_argument("genotype", help="a built-in name, a genotype JSON file, a NAS-Bench-201 string, or a search run "
                   "(id or name)")
    d.add_argument("--preset", choices=sorted(EVAL_PRESETS), default=None,
                   help="the network to build (channels, cells, dataset; default cifar10-nb201 for a nb201 genotype, "
                   "else cifar10-darts)")
    d.add_argument("--tracking-uri", default="", help="where to look up a search run id")
    d.add_argument("--nb201-bench", default="", metavar="DIR", help="a nb201 cell: NATS-Bench's fast-mode archive for "
                   "the benchmark's accuracies (default: $TORCH_HOME/NATS-tss-v1_0-3ffb9-simple where it exists)")
    d.set_defaults(func=cmd_describe)


def eval_preset(space: str, dataset: str = "cifar10") -> str:
    """The evaluation preset for a genotype of ``space`` trained on ``dataset``."""
    if dataset == "digits":
        return "digits-demo"
    return "cifar10-nb201" if space == "nb201" else "cifar10-darts"


def _print_size(size: dict) -> None:
    print(f"genotype ({size['space']}): {size['genotype']}")
    print(f"params (without auxiliary head): {size['params']:,} ({size['params_m']:.2f}M)")
    print(f"FLOPs per image: {size['flops']:,} ({size['flops'] / 1e6:.1f}M; MACs {size['flops'] / 2e6:.1f}M)")


def cmd_describe(args: argparse.Namespace) -> int:
    uri = runs.resolve_tracking_uri(args.tracking_uri or None)
    source = resolve_genotype(args.genotype, uri)
    preset = args.preset or eval_preset(source.genotype.space)
    cfg = EvalConfig.from_dict(dict(EVAL_PRESETS[preset])).validate()
    check_network(source.genotype, cfg)
    cells = f"{cfg.layers} cells per stage" if source.genotype.space == "nb201" else f"{cfg.layers} cells"
    print(f"network: {preset} ({source.genotype.space} space, {cfg.dataset}, C={cfg.C}, {cells})")
    _print_size(describe(source.genotype, cfg))
    if source.genotype.space == "nb201":
        _print_bench(source.genotype, args.nb201_bench)
    return 0


def _print_bench(genotype, path: str) -> None:
    """The benchmark's accuracies of an nb201 cell, where an archive is given or found."""
    from sddarts.trainables.nb201_bench import FIGURES, figures_of, open_archive, resolve_archive

    archive = resolve_archive(path)
    if not archive:
        print("NAS-Bench-201: no archive (pass --nb201-bench DIR for the benchmark's accuracies)")
        return
    found = figures_of(open_archive(archive), genotype.arch_str())
    print(f"NAS-Bench-201 (200 epochs, mean over the benchmark's seeds; {archive}):")
    for key in FIGURES:
        print(f"  {key}: {found[key]:.2f}%" if key in found else f"  {key}: not in the archive")


def evaluate_from_args(args: argparse.Namespace, source: GenotypeSource | None = None) -> tuple[RunOptions, dict]:
    """The evaluation the flags describe (``source``: a genotype object from Python instead of
    ``--search-run``/``--genotype``), checked, then run."""
    opts, cfg = check_inputs(args, EvalConfig, EVAL_PRESETS, "evaluate")
    source = source or resolve_genotype(args.search_run or args.genotype, opts.tracking_uri, opts.experiment)
    check_network(source.genotype, cfg)
    connect(opts.address, cfg)
    return opts, evaluate(cfg, source, opts)


def cmd_evaluate(args: argparse.Namespace) -> int:
    try:
        opts, out = evaluate_from_args(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with: {command_name()} evaluate --resume '{args.name}' and the --search-run or --genotype it ran with", file=sys.stderr)
        return 130
    _report(out, opts.tracking_uri)
    return 0


def evaluate(cfg: EvalConfig, source: GenotypeSource, opts: RunOptions) -> dict[str, Any]:
    print(f"sddarts evaluate {opts.name}: {source.genotype.space} {source.genotype.short()} on {cfg.dataset}, C={cfg.C}, {cfg.layers} cells, "
          f"{cfg.epochs} epochs, {cfg.num_workers} worker(s)", flush=True)
    return run_evaluation(cfg, source, opts)


def _report(out: dict, uri: str) -> None:
    print(f"\ntest accuracy: {out['test_acc']:.2f}%")
    _print_size(out)
    print(f"registered: models:/{out['model']}/{out['version']}")
    print(f"MLflow run id: {out['run_id']}")
    print(f"browse: {runs.run_url(uri, out['experiment_id'], out['run_id'])}")


def run_evaluation(cfg: EvalConfig, source: GenotypeSource, opts: RunOptions, register: bool = True,
                   kind: str = "evaluate") -> dict[str, Any]:
    """Retrains ``source.genotype`` from scratch in an MLflow run (a child of its search run, if
    any); with ``register`` also logs and registers the trained model. Returns the final metrics,
    size, run id and registry version."""
    from sddarts.trainables.eval_loop import build_network, make_eval_trainer
    from sddarts.trainables.fatal import raise_if_fatal
    from sddarts.trainables.checkpoint import load_state
    from sddarts.trainables.runtime import STATE_FILE

    uri = opts.tracking_uri
    client = runs.client(uri)
    exp_id = runs.experiment_id(uri, opts.experiment)
    tags = {"kind": kind, "space": source.genotype.space, "dataset": cfg.dataset, "genotype": source.genotype.short(), "genotype_source": source.label}
    parent = None
    if source.search_run_id:  # shown as a child of its search run, in the search's experiment
        exp_id = client.get_run(source.search_run_id).info.experiment_id
        tags["search_run_id"] = parent = source.search_run_id
    run_id = runs.open_run(uri, exp_id, opts.name, tags, parent, opts.resume)
    run = {"name": opts.name, "tracking_uri": uri, "run_id": run_id}
    out: dict[str, Any] = {"run_id": run_id, "experiment_id": exp_id, "model": model_name(cfg, source.genotype.space)}
    with runs.ending(uri, run_id), runs.heartbeat(uri, run_id):
        client.log_text(run_id, source.genotype.to_json(), "genotype.json")
        result = make_eval_trainer(cfg, source.genotype, run, opts.storage_path).fit()
        raise_if_fatal(result.metrics, uri, run_id)  # a config, data or genotype error: failed on its first attempt
        out.update(result.metrics)
        if register:
            size = describe(source.genotype, cfg)
            net = build_network(source.genotype, cfg)
            with result.checkpoint.as_directory() as d:
                net.load_state_dict(load_state(os.path.join(d, STATE_FILE))["net"])
            client.log_metric(run_id, "params_m", size["params_m"])
            client.log_metric(run_id, "flops_m", size["flops"] / 1e6)
            out.update(size, version=register_model(uri, run_id, net, cfg, source.genotype, {
                "genotype": source.genotype.short(), "search_run_id": source.search_run_id or "",
                "test_acc": f"{out['test_acc']:.2f}", "params": size["params"], "params_m": f"{size['params_m']:.3f}",
                "flops": size["flops"], "eval_run_id": run_id}))
    runs.end_run(uri, run_id, "FINISHED", {"model_version": out["version"]} if register else None)
    return out


def evaluate_best_of_sweep(summary: dict, sweep_opts: RunOptions) -> dict:
    """Retrains the sweep's best genotype with the evaluation preset of its dataset and attaches the
    result to the sweep's parent run."""
    best = summary["best"]
    preset = eval_preset(best["space"], best["dataset"])
    values = dict(EVAL_PRESETS[preset], **{k: best[k] for k in ("dataset", "data_dir", "num_workers", "cpus_per_worker",
                                                                 "gpus_per_worker", "seed")})
    cfg = EvalConfig.from_dict(values).validate()
    opts = RunOptions(name=f"{sweep_opts.name}-best-eval", tracking_uri=sweep_opts.tracking_uri,
                      experiment=sweep_opts.experiment, storage_path=sweep_opts.storage_path, address=sweep_opts.address)
    out = evaluate(cfg, resolve_genotype(summary["best_run_id"], sweep_opts.tracking_uri), opts)
    client = runs.client(sweep_opts.tracking_uri)
    parent = summary["parent_run_id"]
    client.log_metric(parent, "best_test_acc", out["test_acc"])
    client.log_metric(parent, "best_params_m", out["params_m"])
    client.set_tag(parent, "best_eval_run_id", out["run_id"])
    client.set_tag(parent, "best_model", f"models:/{out['model']}/{out['version']}")
    _report(out, sweep_opts.tracking_uri)
    return out
