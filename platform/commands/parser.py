"""The ``sddarts`` command line's parser: one sub-command per job, its flags generated from the
config dataclasses (``trainables/config.py``) and the options (``platform/options.py``)."""

from __future__ import annotations

import argparse

from sddarts.platform.commands import list_runs
from sddarts.platform.commands.flags import add_config_flags, add_option_flags
from sddarts.platform.export import FORMATS
from sddarts.platform.options import (DEFAULT_EXPERIMENT, TRIAL_DEFAULTS, CompareOptions, PowerOptions, RunOptions,
                                      SweepOptions)
from sddarts.trainables.config import EVAL_PRESETS, SEARCH_PRESETS, EvalConfig, SearchConfig


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the flag (``-h`` shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"sddarts: error: {message} (see {self.prog} --help)\n")


def add_run_flags(parser, resume_help: str | None) -> None:
    """``RunOptions``' flags and, with ``resume_help``, ``--resume NAME``."""
    add_option_flags(parser, RunOptions, "where it runs and logs")
    if resume_help:
        parser.add_argument("--resume", metavar="NAME", default=None, help=resume_help)


def add_store_flags(parser, experiment_help: str) -> None:
    """``--tracking-uri`` and ``--experiment`` of a command that only reads the store."""
    parser.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help=experiment_help)


def build_parser(help_preset: str = "") -> argparse.ArgumentParser:
    """The CLI's parser; ``help_preset``: the preset whose values the flags' help shows."""
    parser = OneLineParser(prog="sddarts", description="Self-Distillation DARTS on Ray, tracked in MLflow.",
                           allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("search", help="run one SD-DARTS search (a Ray Train job) and derive a genotype")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, help_preset=help_preset)
    add_run_flags(p, "continue the search NAME from its last checkpoint, in the same MLflow run")

    p = sub.add_parser("sweep", help="tune SD-DARTS' knobs: Ray Tune + Optuna (TPE) + ASHA, one search per trial")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, TRIAL_DEFAULTS, help_preset=help_preset)
    add_option_flags(p, SweepOptions, "sweep")
    p.add_argument("--workers-per-trial", dest="num_workers", type=int, default=argparse.SUPPRESS,
                   help="Train workers per trial (same as --num-workers; default 1 in a sweep)")
    add_run_flags(p, "restore the interrupted sweep NAME (Tune's restore); finished trials are not rerun")

    p = sub.add_parser("evaluate", help="retrain a genotype from scratch with Ray Train and register it in MLflow")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--search-run", metavar="RUN", help="an MLflow search run, by id or name (reads its genotype.json)")
    src.add_argument("--genotype", metavar="NAME_OR_FILE", help="a built-in (DARTS_V1, DARTS_V2), a genotype JSON file "
                     "of any space, or a NAS-Bench-201 string '|nor_conv_3x3~0|+|...|'")
    add_config_flags(p, EvalConfig, EVAL_PRESETS, help_preset=help_preset)
    add_run_flags(p, "continue the evaluation NAME from its last checkpoint")

    p = sub.add_parser("describe", help="a genotype's short form, parameters and FLOPs (trains nothing)")
    p.add_argument("genotype", help="a built-in name, a genotype JSON file, a NAS-Bench-201 string, or a search run "
                   "(id or name)")
    p.add_argument("--preset", choices=sorted(EVAL_PRESETS), default=None,
                   help="the network to build (channels, cells, dataset; default cifar10-nb201 for a nb201 genotype, "
                   "else cifar10-darts)")
    p.add_argument("--tracking-uri", default="", help="where to look up a search run id")
    p.add_argument("--nb201-bench", default="", metavar="DIR", help="a nb201 cell: NATS-Bench's fast-mode archive for "
                   "the benchmark's accuracies (default: $TORCH_HOME/NATS-tss-v1_0-3ffb9-simple where it exists)")

    p = sub.add_parser("compare", help="plain DARTS vs SD-DARTS variants, the field's fixes and random genotypes with "
                       "the same seeds and settings (a grid sweep)")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, TRIAL_DEFAULTS, help_preset=help_preset)
    add_option_flags(p, CompareOptions, "comparison (proxy retrain: adds proxy_acc)")
    p.add_argument("--variant", dest="variants", action="append", default=argparse.SUPPRESS, metavar="NAME='FLAGS'",
                   help="an SD-DARTS variant: config flags over the command's config, e.g. "
                        "w-only='--distill-on weights' or dminus='--sd-weight 0 --aux-skip 1' (repeatable; default: "
                        "one variant, SD-DARTS, the config itself)")
    add_run_flags(p, None)

    p = sub.add_parser("power", help="a testbed's power to rank architectures: proxy_acc's spread across random "
                       "genotypes against one genotype's spread across retrain seeds")
    add_config_flags(p, SearchConfig, SEARCH_PRESETS, TRIAL_DEFAULTS, help_preset=help_preset)
    add_option_flags(p, PowerOptions, "power (proxy retrain: what is measured; default 3 epochs)")
    add_run_flags(p, None)

    p = sub.add_parser("export", help="write a trained model (registry or evaluate run) as ONNX, TorchScript or a "
                       "state dict")
    p.add_argument("source", metavar="RUN_OR_MODEL_URI", help="models:/NAME/VERSION, models:/NAME@ALIAS (such as a "
                   "sweep's models:/NAME@champion), models:/MODEL_ID, runs:/RUN_ID/model, or an evaluate run's id or name")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", required=True, help="the file to write (its folder must exist)")
    add_store_flags(p, "where to look up a run name")

    list_runs.add_parser(sub)
    add_store_flags(sub.choices["runs"], "MLflow experiment name")

    p = sub.add_parser("ui", help="serve the MLflow UI for the tracking store on 127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    add_store_flags(p, "the experiment whose page is printed")
    for action in sub.choices.values():  # `--sd 1` is not `--sd-weight 1`
        action.allow_abbrev = False
    return parser
