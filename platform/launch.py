"""The set-up every command that runs something shares: where it runs and logs (flags and
``RunOptions``) and the checks of its input (``check_inputs``), then ``cluster.connect``: bad input
fails with one line before Ray starts or MLflow records anything."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sddarts.platform import runs
from sddarts.platform.flags import config_from_args
from sddarts.trainables.config import CommonConfig, ConfigError, field_type

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


STORAGE_CHECK_S = 10.0  # how long a storage path gets to prove it is reachable and writable


def check_storage(path: str, timeout: float = STORAGE_CHECK_S) -> None:
    """The storage path, local or a URI (``s3://bucket/x?endpoint_override=...``), must be reachable
    and writable through the pyarrow filesystem Ray Train writes checkpoints with: within
    ``timeout`` seconds a probe file is created there and deleted again. The check leaves nothing
    behind (local folders it created are removed again)."""
    import threading
    import uuid

    import pyarrow.fs

    if "://" not in path:
        target = Path(path)
        if target.exists() and not target.is_dir():
            raise ConfigError(f"storage_path {path} is a file, not a folder")
        existing = next(p for p in [target, *target.parents] if p.exists())
        if not existing.is_dir():
            raise ConfigError(f"storage_path {path} is under a file ({existing}); pass a folder")
    outcome: list[BaseException | None] = []

    def probe() -> None:
        created = []
        try:
            fs, root = pyarrow.fs.FileSystem.from_uri(path if "://" in path else str(Path(path).resolve()))
            if fs.type_name == "local":
                created = [str(p) for p in [Path(root), *Path(root).parents] if not p.exists()][::-1]
            fs.create_dir(root, recursive=True)
            probe_file = f"{root.rstrip('/')}/.sddarts-probe-{uuid.uuid4().hex}"
            with fs.open_output_stream(probe_file) as out:
                out.write(b"ok")
            fs.delete_file(probe_file)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported as one line below
            outcome.append(exc)
        finally:  # a check leaves nothing behind: Ray creates the folders when it writes
            for folder in reversed(created):
                try:
                    os.rmdir(folder)
                except OSError:
                    pass

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise ConfigError(f"storage_path {path} did not answer within {timeout:g} s (an unreachable endpoint or "
                          "bucket?); pass a reachable --storage-path")
    if outcome[0] is not None:
        detail = " ".join(str(outcome[0]).split())[:300]
        raise ConfigError(f"storage_path {path} is not writable here ({type(outcome[0]).__name__}: {detail}); "
                          "pass a writable --storage-path")


def run_options(args: argparse.Namespace, prefix: str) -> RunOptions:
    """The command's RunOptions from its flags, checked; a missing name is ``PREFIX-<timestamp>``."""
    resume = getattr(args, "resume", None)
    name = resume or args.name or time.strftime(f"{prefix}-%Y%m%d-%H%M%S")
    check_name(name)
    args.name = name  # the resolved name, for the command's own messages
    if not args.experiment.strip():
        raise ConfigError("experiment must be a non-empty name")
    runs.check_store_location(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""))
    opts = RunOptions(name=name, tracking_uri=args.tracking_uri, experiment=args.experiment,
                      storage_path=args.storage_path, address=args.address, resume=bool(resume))
    check_storage(opts.storage_path)
    return opts


def resumed_config(cls: type[CommonConfig], presets: dict[str, dict], args: argparse.Namespace,
                   params: dict[str, str]) -> CommonConfig:
    """The config a run was started with (its MLflow params, over the preset where the run never
    logged them). Flags given with ``--resume`` must match it: a resumed run continues the same
    search, on the same schedule."""
    saved: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in params:
            typ = field_type(f)
            saved[f.name] = params[f.name] == "True" if typ is bool else typ(params[f.name])
    changed = [f"--{k.replace('_', '-')} {v!r} (the run has {saved[k]!r})" for k, v in vars(args).items()
               if k in saved and v != saved[k]]
    if changed:
        raise ConfigError(f"resume: {', '.join(changed)}; a resumed run keeps the config it started with "
                          "(resume without these flags, or start a new --name)")
    return cls.from_dict({**config_from_args(cls, presets, args).to_dict(), **saved}).validate()


def check_inputs(args: argparse.Namespace, cls: type[CommonConfig], presets: dict[str, dict], prefix: str,
                 restore_config: bool = True) -> tuple[RunOptions, CommonConfig]:
    """Every check of a command's input that needs no Ray: name, experiment, tracking store and
    server, storage path, whether the run exists (``--resume``) or not, the config (a resumed run's
    own, with ``restore_config``), the data files, and batches against each worker's share."""
    from sddarts.platform.cluster import check_address, ray_address

    opts = run_options(args, prefix)
    check_address(ray_address(opts.address))
    runs.check_tracking(opts.tracking_uri)
    existing = None
    if not runs.store_missing(opts.tracking_uri):
        existing = runs.find_run_by_name(opts.tracking_uri, opts.experiment, opts.name)
    if opts.resume:
        check_resumable(opts)
        if existing is None:
            raise ConfigError(f"resume: no MLflow run named {opts.name!r} in experiment {opts.experiment!r} of "
                              f"{opts.tracking_uri} (pass the --tracking-uri it ran with)")
    elif existing is not None:
        raise ConfigError(f"name: a run named {opts.name!r} already exists ({existing.info.run_id}); "
                          f"pass --resume '{opts.name}' to continue it, or choose another --name")
    cfg = (resumed_config(cls, presets, args, existing.data.params) if opts.resume and restore_config
           else config_from_args(cls, presets, args))
    return opts, check_data(cfg)


def check_data(cfg: CommonConfig) -> CommonConfig:
    """Reads the dataset on the driver and checks each worker's share of it; returns the config
    with what the driver resolved recorded in it: an image folder's channel statistics and, for an
    nb201 search, the NATS-Bench archive it found."""
    from sddarts.trainables.config import SearchConfig
    from sddarts.trainables.data import DataSource, check_available, with_statistics

    seen = check_available(DataSource.of(cfg), cfg.download)
    if seen.converted:
        kind = "RGB" if seen.info.in_channels == 3 else "grey (L)"
        print(f"note: {seen.converted} of {seen.n_train + seen.n_test} images in {cfg.data_dir} were converted to "
              f"{kind} as they load (other modes or bit depths, as torchvision's loaders convert them)", flush=True)
    check_shares(cfg, seen.n_train)
    cfg = with_statistics(cfg, seen.info)
    if isinstance(cfg, SearchConfig) and cfg.space == "nb201":
        from sddarts.trainables.nb201_bench import resolve_archive

        cfg = cfg.replace(nb201_bench=resolve_archive(cfg.nb201_bench))
    return cfg


def check_shares(cfg: CommonConfig, n_train: int) -> None:
    """Each worker's share of each split the loop trains on holds at least one batch."""
    from sddarts.trainables.config import SearchConfig
    from sddarts.trainables.data import check_batches

    if isinstance(cfg, SearchConfig):
        rest = 1 - cfg.holdout_portion
        parts = {"w-train": rest * cfg.train_portion, "alpha-train": rest * (1 - cfg.train_portion)}
    else:
        parts = {"training": 1 - cfg.holdout_portion}
    check_batches(n_train, cfg.batch_size, cfg.num_workers, parts)
