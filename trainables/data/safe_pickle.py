"""Pickled data files read without running code.

CIFAR's python batches, ImageNet16's batches and NATS-Bench's archive are pickles, and a pickle can
name any importable callable to rebuild an object (``__reduce__``): loading a crafted one runs
that callable. Every pickle sddarts opens from a data folder or archive goes through ``load``,
whose unpickler admits only what those formats hold: the standard containers and scalars (which
pickle writes as opcodes, no callable needed), ``collections.OrderedDict``, ``set``/``frozenset``,
the bytes of Python 2 pickles (``_codecs.encode``), and numpy arrays, scalars and dtypes. Any other
callable is refused with one line naming the file and the type, before it is called.
"""

from __future__ import annotations

import bz2
import pickle
from pathlib import Path
from typing import Any

from sddarts.search_spaces.errors import DataError

ALLOWED = frozenset({
    ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"),  # Python 2 pickles
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
})


class UnsafePickleError(DataError):
    """A data file whose pickle names a callable that no data format needs."""


class _DataUnpickler(pickle.Unpickler):
    def __init__(self, fh, path: Path, encoding: str):
        super().__init__(fh, encoding=encoding)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(f"{self.path} holds a pickled {module}.{name}, which no data format needs: sddarts "
                                "loads only containers, numbers, text, bytes and numpy arrays from data files (a "
                                "pickled callable runs code when loaded); remove or replace the file")


def load(path: str | Path, encoding: str = "ASCII") -> Any:
    """The object pickled in ``path`` (bz2-compressed if the name ends in ``.pbz2``), refusing every
    callable outside ``ALLOWED`` (``UnsafePickleError``)."""
    path = Path(path)
    opener = bz2.open if path.name.endswith(".pbz2") else open
    with opener(path, "rb") as fh:
        return _DataUnpickler(fh, path, encoding).load()
