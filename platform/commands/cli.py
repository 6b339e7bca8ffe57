"""The ``sddarts`` command line: parses flags (``parser``) into the same typed calls the Python API
makes (``launch.search``/``evaluate``, ``tuning.sweep``/``compare``/``power``, ``export``), then
prints what they return (``report``). Every error is one line on stderr: exit 2 for bad input,
1 for a failed run (``SDDARTS_DEBUG=1`` shows the traceback)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from sddarts.platform import launch
from sddarts.platform.commands import list_runs, report
from sddarts.platform.commands.error_line import error_line
from sddarts.platform.commands.flags import given, preset_in
from sddarts.platform.commands.parser import build_parser
from sddarts.platform.commands.shell import command_name
from sddarts.platform.compat.ray_console import quiet_consoles
from sddarts.platform.options import CompareOptions, PowerOptions, RunOptions, SweepOptions
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.links import ui_link
from sddarts.platform.tracking.store import resolve_tracking_uri, store_missing
from sddarts.platform.tuning import compare, power, sweep
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import EvalConfig, SearchConfig


def run_options(args: argparse.Namespace, prefix: str) -> RunOptions:
    """The run options the flags give, named (``PREFIX-<timestamp>`` unless given); ``--resume NAME``
    names the run and resumes it."""
    values = given(RunOptions, args)
    if getattr(args, "resume", None):
        values.update(name=args.resume, resume=True)
    values.update(placement_group_cleaner=False)  # this process ends with its run (see RunOptions)
    return RunOptions(**values).named(prefix)


def interrupted(command: str, run: RunOptions, hint: str) -> int:
    print(f"\ninterrupted; the MLflow run is marked KILLED. Resume with: {command_name()} {command} --resume "
          f"'{run.name}' {hint}", file=sys.stderr)
    return 130


def cmd_search(args: argparse.Namespace) -> int:
    run = run_options(args, "search")
    try:
        out = launch.search(args.preset, given(SearchConfig, args), run)
    except KeyboardInterrupt:
        return interrupted("search", run, "(same --storage-path and --tracking-uri)")
    report.search_finished(out, resolve_tracking_uri(run.tracking_uri or None))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    run = run_options(args, "evaluate")
    try:
        out = launch.evaluate(args.search_run or args.genotype, args.preset, given(EvalConfig, args), run)
    except KeyboardInterrupt:
        return interrupted("evaluate", run, "and the --search-run or --genotype it ran with")
    report.evaluation_finished(out, resolve_tracking_uri(run.tracking_uri or None))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from sddarts.platform.tracking.genotype_source import resolve_genotype
    from sddarts.platform.tracking.registry import check_network, describe
    from sddarts.trainables.config import EVAL_PRESETS
    from sddarts.trainables.presets import eval_preset

    source = resolve_genotype(args.genotype, resolve_tracking_uri(args.tracking_uri or None))
    genotype = source.genotype
    preset = args.preset or eval_preset(genotype.space)
    cfg = EvalConfig.from_dict(dict(EVAL_PRESETS[preset])).validate()
    check_network(genotype, cfg)
    cells = f"{cfg.layers} cells per stage" if genotype.space == "nb201" else f"{cfg.layers} cells"
    print(f"network: {preset} ({genotype.space} space, {cfg.dataset}, C={cfg.C}, {cells})")
    report.size(describe(genotype, cfg))
    if genotype.space == "nb201":
        print_bench(genotype, args.nb201_bench)
    return 0


def print_bench(genotype, path: str) -> None:
    """The benchmark's accuracies of an nb201 cell, where an archive is given or found."""
    from sddarts.trainables.data.nb201_bench import FIGURES, figures_of, open_archive, resolve_archive

    archive = resolve_archive(path)
    if not archive:
        print("NAS-Bench-201: no archive (pass --nb201-bench DIR for the benchmark's accuracies)")
        return
    found = figures_of(open_archive(archive), genotype.arch_str())
    print(f"NAS-Bench-201 (200 epochs, mean over the benchmark's seeds; {archive}):")
    for key in FIGURES:
        print(f"  {key}: {found[key]:.2f}%" if key in found else f"  {key}: not in the archive")


def cmd_sweep(args: argparse.Namespace) -> int:
    run = run_options(args, "sweep")
    try:
        out = sweep.sweep(args.preset, given(SearchConfig, args), SweepOptions(**given(SweepOptions, args)), run)
    except KeyboardInterrupt:
        return interrupted("sweep", run, "(same --storage-path and --tracking-uri)")
    if not report.sweep_finished(out, resolve_tracking_uri(run.tracking_uri or None)):
        print("no trial completed all its epochs; nothing to rank", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    run = run_options(args, "compare")
    try:
        out = compare.compare(args.preset, given(SearchConfig, args), CompareOptions(**given(CompareOptions, args)), run)
    except KeyboardInterrupt:
        print("\ninterrupted; the MLflow parent run is marked KILLED", file=sys.stderr)
        return 130
    report.compare_finished(out, resolve_tracking_uri(run.tracking_uri or None))
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    out = power.power(args.preset, given(SearchConfig, args), PowerOptions(**given(PowerOptions, args)),
                      run_options(args, "power"))
    report.power_finished(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sddarts.platform.export import export_model
    from sddarts.platform.tracking.registry import INPUT

    out = export_model(args.source, args.format, args.out, args.tracking_uri, args.experiment)
    print(f"wrote {out} ({args.format}; input: {INPUT})")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Serves the MLflow UI over the configured store, bound to 127.0.0.1."""
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"port must be in 1..65535 (got {args.port})")
    uri = resolve_tracking_uri(args.tracking_uri or None)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking server already serves its UI: {uri}")
        return 0
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    home = f"http://127.0.0.1:{args.port}"
    exp = None if store_missing(uri) else runs.client(uri).get_experiment_by_name(args.experiment)
    page = ui_link(home, exp.experiment_id) if exp else home
    print(f"MLflow UI for {uri}: {page}  (Ctrl-C to stop)", flush=True)
    os.execv(mlflow_bin, [mlflow_bin, "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
                          "--port", str(args.port), "--workers", "1"])
    return 0


COMMANDS = {"search": cmd_search, "evaluate": cmd_evaluate, "describe": cmd_describe, "sweep": cmd_sweep,
            "compare": cmd_compare, "power": cmd_power, "export": cmd_export, "runs": list_runs.cmd_runs,
            "ui": cmd_ui}


def main(argv: list[str] | None = None) -> int:
    quiet_consoles()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(preset_in(argv)).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except Exception as exc:  # one line, whichever process raised it; SDDARTS_DEBUG=1 for the traceback
        if os.environ.get("SDDARTS_DEBUG") == "1":
            raise
        code, line = error_line(exc)
        print(f"sddarts: error: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
