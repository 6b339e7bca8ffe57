"""The set-up every command that runs something shares: where it runs and logs (flags and
``RunOptions``), the checks of its input, and connecting to Ray, in that order, so bad input
fails with one line before Ray or MLflow start."""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sddarts.platform import runs
from sddarts.trainables.config import CommonConfig, ConfigError

NAME_RULE = ("1-100 ASCII letters, digits, spaces and . _ - ' + = , @ ( ), starting with a letter or digit "
             "(it names a checkpoint folder and an MLflow run)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-'+=,@()]{0,99}")


@dataclass
class RunOptions:
    """Where a run goes; not part of the search config itself."""

    name: str = ""
    tracking_uri: str = ""
    experiment: str = runs.DEFAULT_EXPERIMENT
    storage_path: str = "sddarts_runs"
    address: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        self.tracking_uri = runs.resolve_tracking_uri(self.tracking_uri or None)
        if "://" not in self.storage_path:
            self.storage_path = str(Path(self.storage_path).expanduser().resolve())
        if not self.name:
            self.name = time.strftime("search-%Y%m%d-%H%M%S")


def add_run_flags(parser: argparse.ArgumentParser, resume_help: str | None) -> None:
    """``--name``, ``--tracking-uri``, ``--experiment``, ``--storage-path``, ``--address`` and,
    with ``resume_help``, ``--resume``."""
    g = parser.add_argument_group("where it runs and logs")
    g.add_argument("--name", default="", help="run name (default: timestamped); the Train run and MLflow run share it")
    if resume_help:
        g.add_argument("--resume", metavar="NAME", default=None, help=resume_help)
    g.add_argument("--tracking-uri", default="", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)")
    g.add_argument("--experiment", default=runs.DEFAULT_EXPERIMENT, help="MLflow experiment name")
    g.add_argument("--storage-path", default="sddarts_runs", help="where Ray keeps checkpoints (a shared path or URI on a cluster)")
    g.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")


def check_name(name: str) -> None:
    """Raises ConfigError unless ``name`` follows ``NAME_RULE``."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"name must be {NAME_RULE} (got {name!r})")


def check_resumable(opts: RunOptions) -> None:
    """Raises ConfigError when ``--resume NAME`` has no checkpoints under the storage path."""
    if "://" in opts.storage_path:
        return  # remote storage: Ray Train checks it
    if not (Path(opts.storage_path) / opts.name).is_dir():
        raise ConfigError(f"resume: no run named {opts.name!r} under storage_path {opts.storage_path} "
                          "(pass the --storage-path it ran with)")


def run_options(args: argparse.Namespace, prefix: str) -> RunOptions:
    """The command's RunOptions from its flags; a missing name is ``PREFIX-<timestamp>``."""
    resume = getattr(args, "resume", None)
    name = resume or args.name or time.strftime(f"{prefix}-%Y%m%d-%H%M%S")
    check_name(name)
    return RunOptions(name=name, tracking_uri=args.tracking_uri, experiment=args.experiment,
                      storage_path=args.storage_path, address=args.address, resume=bool(resume))


def prepare(args: argparse.Namespace, cfg: CommonConfig, prefix: str, extra_cpu: float = 0.0,
            check: Callable[[RunOptions], None] | None = None) -> tuple[RunOptions, dict[str, float]]:
    """Checks everything a command was given (name, data, resumability, tracking server, and
    ``check``), then connects to Ray; returns the run options and the cluster's resources.
    ``extra_cpu``: what each job needs beside its Train workers (a sweep trial's driver)."""
    from sddarts.platform.cluster import connect
    from sddarts.trainables.data import check_available

    opts = run_options(args, prefix)
    check_available(cfg.dataset, cfg.data_dir, cfg.download)
    if opts.resume:
        check_resumable(opts)
    runs.check_tracking(opts.tracking_uri)
    if check is not None:
        check(opts)
    return opts, connect(opts.address, cfg, extra_cpu)
