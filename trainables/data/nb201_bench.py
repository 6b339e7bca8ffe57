"""NAS-Bench-201's answer for a cell: its accuracies after the benchmark's 200-epoch training,
read from NATS-Bench's topology archive in fast mode through ``nats_bench``'s own API.

The figures are the mean over the benchmark's seeds (``is_random=False``) at ``hp='200'``:

- ``bench_cifar10_valid``: trained on CIFAR-10's train half, measured on its valid half (the one
  figure a search may select on);
- ``bench_cifar10_test``: trained on all of CIFAR-10's training set, CIFAR-10's test set;
- ``bench_cifar100_test``, ``bench_imagenet16_test``: the benchmark's x-test halves.
"""

from __future__ import annotations

import os
from pathlib import Path

from sddarts.trainables.data import safe_pickle
from sddarts.search_spaces.errors import DataError

ARCHIVE = "NATS-tss-v1_0-3ffb9-simple"
FIGURES = {  # metric -> (nats_bench dataset, get_more_info key)
    "bench_cifar10_valid": ("cifar10-valid", "valid-accuracy"),
    "bench_cifar10_test": ("cifar10", "test-accuracy"),
    "bench_cifar100_test": ("cifar100", "test-accuracy"),
    "bench_imagenet16_test": ("ImageNet16-120", "test-accuracy"),
}
SELECTABLE = ("bench_cifar10_valid",)  # the test figures are for reporting, never for selection


class BenchError(DataError):
    """A benchmark archive that is missing or malformed, or a cell it lacks."""


def default_archive() -> Path:
    """``$TORCH_HOME/NATS-tss-v1_0-3ffb9-simple`` (``~/.torch`` without ``TORCH_HOME``), where nats_bench looks."""
    return Path(os.environ.get("TORCH_HOME") or Path.home() / ".torch") / ARCHIVE


class Archive:
    """NATS-Bench's fast-mode topology archive, every file read by ``safe_pickle`` (nats_bench's own
    loader unpickles anything): the meta file at once, each cell's record on its first query, then
    handed to nats_bench's API (``create`` from a dict) for the lookup of its figures."""

    def __init__(self, folder: Path):
        self.archive_dir = str(folder)
        meta = safe_pickle.load(folder / "meta.pickle.pbz2")
        if not isinstance(meta, dict) or not isinstance(meta.get("meta_archs"), list):
            raise ValueError("meta.pickle.pbz2 holds no meta_archs list")
        self.meta_archs = meta["meta_archs"]
        self.index = {arch: i for i, arch in enumerate(self.meta_archs)}
        self._apis: dict[int, object] = {}

    def query_index_by_arch(self, arch_str: str) -> int:
        return self.index.get(arch_str, -1)

    def get_more_info(self, index: int, dataset: str, hp: str, is_random: bool) -> dict:
        if index not in self._apis:
            import nats_bench

            folder = Path(self.archive_dir)
            path = next((p for p in (folder / f"{index:06d}.pickle.pbz2", folder / f"{index}.pickle.pbz2") if p.is_file()),
                        None)
            if path is None:
                raise OSError(f"invalid data path : {folder / f'{index:06d}.pickle.pbz2'}")
            record = safe_pickle.load(path)
            if not isinstance(record, dict):
                raise ValueError(f"invalid format of data in {path}")
            self._apis[index] = nats_bench.create({"meta_archs": self.meta_archs, "arch2infos": {index: record},
                                                   "evaluated_indexes": [index]}, "tss", fast_mode=False, verbose=False)
        return self._apis[index].get_more_info(index, dataset, hp=hp, is_random=is_random)


def open_archive(path: str) -> Archive:
    """The fast-mode archive folder ``path`` (its ``meta.pickle.pbz2`` read; each cell's record is
    read when it is first queried), never unpickling a callable."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise BenchError(f"nb201_bench {path!r} is not a folder; pass NATS-Bench's fast-mode archive folder "
                         f"({ARCHIVE}, unpacked from {ARCHIVE}.tar)")
    if not (folder / "meta.pickle.pbz2").is_file():
        raise BenchError(f"nb201_bench {path!r} has no meta.pickle.pbz2: it is not NATS-Bench's fast-mode topology "
                         f"archive ({ARCHIVE})")
    try:
        return Archive(folder)
    except safe_pickle.UnsafePickleError:
        raise
    except Exception as exc:  # a corrupt bz2 file, an archive of another space
        raise BenchError(f"nb201_bench {path!r} is not a readable NATS-Bench topology archive "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None


def resolve_archive(path: str) -> str:
    """The archive a search uses: ``path`` checked (one line if it is not an archive), or with ``''``
    the default folder when it exists, else ``''`` (no benchmark figures; nothing fails)."""
    if not path:
        found = default_archive()
        if not (found / "meta.pickle.pbz2").is_file():
            return ""
        path = str(found)
    open_archive(path)
    return str(Path(path).expanduser().resolve())


def figures_of(api, arch_str: str) -> dict[str, float]:
    """The ``FIGURES`` of the cell ``arch_str`` that the archive holds; BenchError if it lacks the cell."""
    index = api.query_index_by_arch(arch_str)
    if index < 0:
        raise BenchError(f"cell {arch_str} is not in the archive {api.archive_dir} (a NAS-Bench-201 cell has 6 edges "
                         "of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)")
    out = {}
    for metric, (dataset, key) in FIGURES.items():
        try:
            value = api.get_more_info(index, dataset, hp="200", is_random=False).get(key)
        except KeyError:  # the archive has no 200-epoch training on this dataset
            continue
        except safe_pickle.UnsafePickleError:
            raise
        except (AssertionError, ValueError, OSError, EOFError) as exc:  # the cell's record file is missing or bad
            raise BenchError(f"archive {api.archive_dir} has no readable record for cell {index} ({arch_str}): "
                             f"{' '.join(str(exc).split())[:200]}") from None
        if value is not None:
            out[metric] = float(value)
    return out


class Bench:
    """One worker's view of the archive: opened on the first query, each cell read once."""

    def __init__(self, path: str):
        self.path, self._api, self.warned = path, None, False

    def figures(self, arch_str: str) -> dict[str, float]:
        """The cell's ``FIGURES`` (none without an archive); BenchError as ``figures_of``."""
        if not self.path:
            return {}
        if self._api is None:
            self._api = open_archive(self.path)
        return figures_of(self._api, arch_str)

    def epoch_figures(self, genotype, say) -> dict[str, float]:
        """``figures`` of a search's derived genotype; a problem is said once (``say``) and the search goes on."""
        if getattr(genotype, "space", "") != "nb201":
            return {}
        try:
            return self.figures(genotype.arch_str())
        except BenchError as exc:
            if not self.warned:
                say(f"no benchmark figures this epoch: {exc}")
                self.warned = True
            return {}
