"""Every error sddarts raises on purpose, in one hierarchy (in the bottom layer, so that every
layer can raise and catch it).

``SddartsError``: a run that cannot go on, whose message says what to do; printed as one line,
never retried (a worker that meets one ends its run instead of letting Ray Train restart it).
``UserError`` is its bad-input branch: the CLI prints the message itself and exits 2. Any other
``SddartsError`` prints as ``the run failed: ...`` and exits 1, as any unexpected error does
(which Ray Train does retry).
"""

from __future__ import annotations


class SddartsError(Exception):
    """A run that cannot go on; the message says what to do. ``exit_code``: the CLI's."""

    exit_code = 1

    def __init__(self, message: str = "", exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UserError(SddartsError, ValueError):
    """Bad input: a flag, a config field, a data file, a genotype, a tracking store."""

    exit_code = 2


class ConfigError(UserError):
    """A config value out of its allowed range. The message names the field and the range."""


class DataError(UserError):
    """A dataset that cannot be read as asked; the message names the file and what to do."""


class GenotypeError(UserError):
    """A genotype that is malformed or does not fit the network it is asked to build."""


class TrackingError(UserError):
    """The tracking store cannot be used. The message says what to do."""


class CheckpointError(SddartsError):
    """A checkpoint file that cannot be read safely; the message names the file and what to do."""


class StorageFullError(SddartsError):
    """The storage path filled up while a checkpoint was written: retrying cannot help until space
    is freed, and the previous checkpoint is still the run's latest."""


class RunFailedError(SddartsError):
    """A run that failed for another reason (the Python API's form of the CLI's exit 1)."""


def error_types() -> dict[str, type[SddartsError]]:
    """Every ``SddartsError`` class by name (a worker's report names one; the driver raises it again)."""
    found: dict[str, type[SddartsError]] = {}
    todo: list[type[SddartsError]] = [SddartsError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found
