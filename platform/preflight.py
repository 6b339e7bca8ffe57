"""The checks every command that runs something makes before Ray starts or MLflow records
anything: the run's name, tracking store and storage path (``run_options``), whether the run
exists (or, to resume, does), the config (a resumed run's own), the data files, and each worker's
share of them (``check_inputs``)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from sddarts.platform.cluster import check_address, ray_address
from sddarts.platform.options import RunOptions
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.store import check_store_location, check_tracking, resolve_tracking_uri, store_missing
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import CommonConfig, field_type

NAME_RULE = ("1-100 ASCII letters, digits, spaces and . _ - ' + = , @ ( ), starting with a letter or digit "
             "(it names a checkpoint folder and an MLflow run)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-'+=,@()]{0,99}")


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


def refused_endpoint(path: str) -> str | None:
    """The ``endpoint_override`` of an object-store URI (``s3://b/x?endpoint_override=host:port``)
    when it refuses a TCP connection: nothing listens there, which a refusal says at once (pyarrow
    would retry it for longer than the check waits). None where the connection opens, or fails
    otherwise (the probe then decides)."""
    import socket
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(path).query)
    endpoint = query.get("endpoint_override", [""])[0]
    if not endpoint:
        return None
    secure = query.get("scheme", ["https"])[0] == "https"
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    try:
        with socket.create_connection((parts.hostname or "", parts.port or (443 if secure else 80)), timeout=2):
            return None
    except ConnectionRefusedError:
        return endpoint
    except (OSError, ValueError):
        return None


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
    elif endpoint := refused_endpoint(path):
        raise ConfigError(f"storage_path {path}: nothing listens at {endpoint} (connection refused); pass a "
                          "reachable --storage-path")
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


def run_options(run: RunOptions, prefix: str) -> RunOptions:
    """``run`` checked and resolved: its name (``PREFIX-<timestamp>`` when none is given), the
    tracking URI (``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``) and the storage path made absolute."""
    run.check()
    if run.resume and not run.name:
        raise ConfigError("resume needs the name of the run to continue")
    name = run.named(prefix).name
    check_name(name)
    if not run.experiment.strip():
        raise ConfigError("experiment must be a non-empty name")
    check_store_location(run.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""))
    storage = run.storage_path if "://" in run.storage_path else str(Path(run.storage_path).expanduser().resolve())
    resolved = dataclasses.replace(run, name=name, tracking_uri=resolve_tracking_uri(run.tracking_uri or None),
                                   storage_path=storage)
    check_storage(resolved.storage_path)
    return resolved


def config_from(cls: type[CommonConfig], presets: dict[str, dict], preset: str, fields: dict[str, Any],
                defaults: dict[str, Any] | None = None) -> CommonConfig:
    """``preset``'s values, then the command's own ``defaults`` (one worker per sweep trial), then
    the ``fields`` given; checked."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(names))}")
    if preset not in presets:
        raise ConfigError(f"preset must be one of {', '.join(presets)} (got {preset!r})")
    try:
        return cls.from_dict({**presets[preset], **(defaults or {}), **fields}).validate()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def resumed_config(cls: type[CommonConfig], presets: dict[str, dict], preset: str, fields: dict[str, Any],
                   params: dict[str, str]) -> CommonConfig:
    """The config a run was started with (its MLflow params, over the preset where the run never
    logged them). Fields given with a resume must match it: a resumed run continues the same
    search, on the same schedule."""
    saved: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in params:
            typ = field_type(f)
            saved[f.name] = params[f.name] == "True" if typ is bool else typ(params[f.name])
    changed = [f"--{k.replace('_', '-')} {v!r} (the run has {saved[k]!r})" for k, v in fields.items()
               if k in saved and v != saved[k]]
    if changed:
        raise ConfigError(f"resume: {', '.join(changed)}; a resumed run keeps the config it started with "
                          "(resume without these flags, or start a new --name)")
    return cls.from_dict({**config_from(cls, presets, preset, fields).to_dict(), **saved}).validate()


def check_inputs(cls: type[CommonConfig], presets: dict[str, dict], preset: str, fields: dict[str, Any],
                 run: RunOptions, prefix: str, defaults: dict[str, Any] | None = None,
                 restore_config: bool = True) -> tuple[RunOptions, CommonConfig]:
    """Every check of a command's input that needs no Ray: name, experiment, tracking store and
    server, storage path, whether the run exists (``resume``) or not, the config (a resumed run's
    own, with ``restore_config``), the data files, and batches against each worker's share.
    Returns the resolved run options and the config."""
    run = run_options(run, prefix)
    check_address(ray_address(run.address or None))
    check_tracking(run.tracking_uri)
    existing = None if store_missing(run.tracking_uri) else runs.find_run_by_name(run.tracking_uri, run.experiment,
                                                                                   run.name)
    if run.resume:
        check_resumable(run)
        if existing is None:
            raise ConfigError(f"resume: no MLflow run named {run.name!r} in experiment {run.experiment!r} of "
                              f"{run.tracking_uri} (pass the --tracking-uri it ran with)")
    elif existing is not None:
        raise ConfigError(f"name: a run named {run.name!r} already exists ({existing.info.run_id}); "
                          f"pass --resume '{run.name}' to continue it, or choose another --name")
    cfg = (resumed_config(cls, presets, preset, fields, existing.data.params) if run.resume and restore_config
           else config_from(cls, presets, preset, fields, defaults))
    return run, check_data(cfg)


def check_data(cfg: CommonConfig) -> CommonConfig:
    """Reads the dataset on the driver and checks each worker's share of it; returns the config
    with what the driver resolved recorded in it: an image folder's channel statistics and, for an
    nb201 search, the NATS-Bench archive it found."""
    from sddarts.trainables.config import SearchConfig
    from sddarts.trainables.data.datasets import DataSource, check_available, with_statistics

    seen = check_available(DataSource.of(cfg), cfg.download)
    if seen.converted:
        kind = "RGB" if seen.info.in_channels == 3 else "grey (L)"
        print(f"note: {seen.converted} of {seen.n_train + seen.n_test} images in {cfg.data_dir} were converted to "
              f"{kind} as they load (other modes or bit depths, as torchvision's loaders convert them)", flush=True)
    check_shares(cfg, seen.n_train)
    cfg = with_statistics(cfg, seen.info)
    if isinstance(cfg, SearchConfig) and cfg.space == "nb201":
        from sddarts.trainables.data.nb201_bench import resolve_archive

        cfg = cfg.replace(nb201_bench=resolve_archive(cfg.nb201_bench))
    return cfg


def check_shares(cfg: CommonConfig, n_train: int) -> None:
    """Each worker's share of each split the loop trains on holds at least one batch."""
    from sddarts.trainables.config import SearchConfig
    from sddarts.trainables.data.datasets import check_batches

    if isinstance(cfg, SearchConfig):
        rest = 1 - cfg.holdout_portion
        parts = {"w-train": rest * cfg.train_portion, "alpha-train": rest * (1 - cfg.train_portion)}
    else:
        parts = {"training": 1 - cfg.holdout_portion}
    check_batches(n_train, cfg.batch_size, cfg.num_workers, parts)
