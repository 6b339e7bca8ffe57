"""Ray 2.60 Tune's experiment-state saves: one warning line for a failed copy, and the last state on storage.

Tune writes its experiment state (trial statuses, the searcher) into the driver's staging folder and
copies that folder to the storage path in a background thread. A save that starts while the
previous copy still runs replaces files the copy has listed (Tune writes ``.<uuid>-tmp-*`` files and
renames them), and the copy fails with a 20-line traceback from Ray, although the next save copies
everything again. ``quiet_failed_saves`` turns each such report into one warning line;
``StateOnStorage`` (a Tune callback) checks once Tune has made its last save, also after Ctrl-C,
that the storage holds the files a resume reads, and copies those that differ.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import ray.tune

# Where Ray reports a failed copy of the experiment state: the save, the next save's wait, the last save.
REPORTERS = ("ray.tune.execution.experiment_state", "ray.train._internal.syncer", "ray.tune.tune")
NEEDLES = ("Saving experiment state to storage", "Last sync command failed", "Experiment state snapshotting failed")


def _cause(record: logging.LogRecord) -> str:
    """``Type: message`` of the exception a record reports, in one line."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    lines = [line for line in record.getMessage().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


class OneLine(logging.Filter):
    """Replaces Ray's traceback for a failed experiment-state copy by one ``sddarts: warning:`` line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not any(needle in str(record.msg) for needle in NEEDLES):
            return True
        print(f"sddarts: warning: copying Tune's experiment state to storage failed ({_cause(record)}); "
              "Tune copies it again at its next save", file=sys.stderr, flush=True)
        return False


@contextlib.contextmanager
def quiet_failed_saves():
    """Within the block, Ray's reports of a failed experiment-state copy are one line each."""
    one_line = OneLine()
    loggers = [logging.getLogger(name) for name in REPORTERS]
    for logger in loggers:
        logger.addFilter(one_line)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(one_line)


def state_files(folder: str) -> dict[str, bytes]:
    """The files Tune's restore reads from an experiment folder (top-level ``*.json``, ``*.pkl``),
    without the temporary files of a save in progress."""
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()
            if p.is_file() and p.suffix in (".json", ".pkl") and not p.name.startswith(".")}


def copy_missing(staging: str, fs, fs_path: str) -> list[str]:
    """Copies the state files of ``staging`` that ``fs_path`` (on the pyarrow filesystem ``fs``)
    lacks or holds in another version; returns their names."""
    copied = []
    for name, data in state_files(staging).items():
        target = f"{fs_path.rstrip('/')}/{name}"
        try:
            with fs.open_input_stream(target) as f:
                if f.read() == data:
                    continue
        except (FileNotFoundError, OSError):
            pass
        with fs.open_output_stream(target) as f:
            f.write(data)
        copied.append(name)
    return copied


class StateOnStorage(ray.tune.Callback):
    """After Tune's last save (its final save runs before ``on_experiment_end``, also on Ctrl-C),
    copies what a resume needs when a failed copy left the storage behind, and says so in one line."""

    def on_experiment_end(self, trials, **info):
        if not trials:
            return
        storage = trials[0].storage
        try:
            copied = copy_missing(storage.experiment_driver_staging_path, storage.storage_filesystem,
                                  storage.experiment_fs_path)
        except OSError as e:
            print(f"sddarts: warning: Tune's experiment state in {storage.experiment_fs_path} may be older "
                  f"than the run ({type(e).__name__}: {e}); a resume starts from that state", file=sys.stderr)
            return
        if copied:
            print(f"sddarts: warning: Tune's last save had not reached {storage.experiment_fs_path}; "
                  f"copied {', '.join(sorted(copied))} again", file=sys.stderr, flush=True)
