"""No data file runs code: a pickle that would run a command when loaded, placed where sddarts
reads CIFAR batches, ImageNet16 batches or a NATS-Bench archive, is refused in one line before
its callable is called (the real formats still load: test_data, test_datasets)."""

from __future__ import annotations

import bz2
import os
import pickle
from pathlib import Path

import pytest

from cifar_files import write_cifar
from dataset_files import every_cell, write_cifar10_valid, write_imagenet16, write_nats_archive
from sddarts.platform.commands.cli import main
from sddarts.trainables.data.batches import load_arrays
from sddarts.trainables.data.safe_pickle import UnsafePickleError


class _Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _craft(path: Path, marker: Path, compressed: bool = False) -> None:
    data = pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=2)
    path.write_bytes(bz2.compress(data) if compressed else data)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("name", ["cifar10", "cifar10-valid", "ImageNet16-120"])
def test_a_crafted_batch_is_refused_and_its_command_never_runs(name, tmp_path, capsys):
    marker = tmp_path / "ran"
    if name == "ImageNet16-120":
        write_imagenet16(tmp_path / "d")
        target = tmp_path / "d" / "ImageNet16" / "train_data_batch_3"
    else:
        (write_cifar10_valid if name == "cifar10-valid" else lambda root: write_cifar(root, "cifar10", 12))(tmp_path / "d")
        target = tmp_path / "d" / "cifar-10-batches-py" / "data_batch_2"
    _craft(target, marker)
    with pytest.raises(UnsafePickleError, match=r"holds a pickled (posix|nt)\.system"):
        load_arrays(name, str(tmp_path / "d"), train=True)
    rc = main(["search", "--dataset", name, "--data-dir", str(tmp_path / "d"), "--epochs", "1", "--name", "x",
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", str(tmp_path / "runs")])
    line = _one_line(capsys)
    assert rc == 2 and str(target) in line and "system" in line and "remove or replace the file" in line
    assert not marker.exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("which", ["meta", "cell"])
def test_a_crafted_nats_bench_archive_is_refused_and_its_command_never_runs(which, tmp_path, capsys):
    cells = every_cell()[:3]
    write_nats_archive(tmp_path / "nats", cells)
    marker = tmp_path / "ran"
    target = tmp_path / "nats" / ("meta.pickle.pbz2" if which == "meta" else "000000.pickle.pbz2")
    _craft(target, marker, compressed=True)
    rc = main(["describe", cells[0], "--nb201-bench", str(tmp_path / "nats")])
    line = _one_line(capsys)
    assert rc == 2 and str(target) in line and "system" in line
    assert not marker.exists()
    if which == "cell":  # the meta file is fine: another cell still reads
        assert main(["describe", cells[1], "--nb201-bench", str(tmp_path / "nats")]) == 0
        assert "bench_cifar10_valid" in capsys.readouterr().out
