"""Your own image folder, NAS-Bench-201's datasets and the benchmark's answer, through the real
loaders and nats_bench's own API on files the tests write; every bad input is one line before
Ray starts."""

import json

import numpy as np
import pytest
import ray
import torch

from dataset_files import every_cell, write_cifar10_valid, write_image_folder, write_imagenet16, write_nats_archive
from sddarts.platform.commands.cli import main
from sddarts.trainables.data.datasets import INFO, DataSource, check_available, dataset_info, load_dataset, search_splits
from sddarts.search_spaces.errors import DataError
from sddarts.trainables.data.nb201_bench import resolve_archive

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_an_image_folder_loads_with_its_classes_size_and_statistics(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    seen = check_available(DataSource("imagefolder", str(root), image_size=16))
    assert seen.classes == ("cat", "dog", "owl") and (seen.n_train, seen.n_test) == (36, 12)
    assert seen.info.in_channels == 3 and seen.info.num_classes == 3 and seen.info.image_size == 16
    from PIL import Image
    from torchvision.transforms import v2

    from sddarts.trainables.data.image_folder import square

    pixels = torch.stack([v2.functional.to_dtype(square(16)(v2.functional.to_image(Image.open(p).convert("RGB"))),
                                                 torch.float64, scale=True) for p in sorted(root.glob("train/*/*.png"))])
    np.testing.assert_allclose(seen.info.mean, pixels.mean(dim=(0, 2, 3)).numpy(), atol=1e-4)
    np.testing.assert_allclose(seen.info.std, pixels.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-4)
    source = DataSource("imagefolder", str(root), 16, seen.info.mean, seen.info.std)
    train, test = load_dataset(source, train=True), load_dataset(source, train=False)
    assert len(train) == 36 and len(test) == 12
    x, y = test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 0  # both sizes become 16 x 16
    assert {int(test[i][1]) for i in range(len(test))} == {0, 1, 2}
    plain = load_dataset(source, train=True, augment=False)
    torch.manual_seed(0)
    assert any(not torch.equal(train[i][0], plain[i][0]) for i in range(4))  # training images are cropped and flipped
    splits = search_splits(source, 0.5, 0.25, seed=0)
    assert (len(splits.w_train), len(splits.alpha_train), len(splits.holdout)) == (14, 13, 9)


def test_grey_folders_have_one_channel_and_the_default_size_is_32(tmp_path):
    root = write_image_folder(tmp_path / "grey", mode="L", test_split="test")
    info = dataset_info(DataSource("imagefolder", str(root)))
    assert info.in_channels == 1 and info.image_size == 32 and len(info.mean) == 1


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _float_image(path):
    from PIL import Image

    Image.fromarray(np.zeros((20, 20), np.float32), "F").save(path)


BAD_FOLDERS = [
    (lambda r: __import__("shutil").rmtree(r / "val"), "has no val/ or test/ folder"),
    (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()], "class 'dog' in"),
    (lambda r: (r / "train" / "cat" / "000.png").write_bytes(b"not an image"), "train/cat/000.png is unreadable or truncated"),
    (lambda r: _truncate(r / "val" / "owl" / "001.png"), "val/owl/001.png is unreadable or truncated"),
    (lambda r: __import__("shutil").rmtree(r / "val" / "owl"), "class 'owl' is missing from"),
    (lambda r: [__import__("shutil").rmtree(r / s / c) for s in ("train", "val") for c in ("dog", "owl")],
     "holds one class ('cat'): a classifier needs 2 class folders or more"),
    (lambda r: _float_image(r / "train" / "owl" / "zzz.tif"), "train/owl/zzz.tif has 32-bit float pixels"),
    (lambda r: __import__("shutil").rmtree(r / "train"), "has no train/ folder"),
]


@pytest.mark.parametrize("break_it,needle", BAD_FOLDERS)
def test_every_bad_folder_is_one_line_before_ray_starts(break_it, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = write_image_folder(tmp_path / "pets", per_class=3)
    break_it(root)
    was_running = ray.is_initialized()
    rc = main(["search", "--dataset", "imagefolder", "--data-dir", str(root), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("sddarts: error: ") and needle in lines[0], lines
    assert ray.is_initialized() == was_running and not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--dataset", "cifar10", "--data-dir", "x", "--image-size", "64"], "image_size applies to dataset imagefolder only"),
    (["--dataset", "imagefolder", "--data-dir", "x", "--data-mean", "0.5"], "data_mean and data_std go together"),
    (["--dataset", "imagefolder", "--data-dir", "x", "--data-mean", "0.5,0.5", "--data-std", "0.2,0.2"], "1 or 3 finite numbers"),
    (["--dataset", "imagefolder", "--data-dir", "x", "--augment-on-device"], "imagefolder augments in its loader"),
    (["--nb201-bench", "x"], "nb201_bench applies to space nb201 only"),
    (["--space", "nb201", "--nb201-bench", "nowhere"], "nb201_bench 'nowhere' is not a folder"),
])
def test_bad_dataset_and_benchmark_flags_are_one_line(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["search", *argv, "--tracking-uri", f"sqlite:///{tmp_path}/m.db"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and needle in lines[0], lines


def test_cifar10_valid_is_nas_bench_201s_split_with_its_normalisation(tmp_path):
    write_cifar10_valid(tmp_path)
    halves = json.loads((tmp_path / "cifar-split.txt").read_text())
    source = DataSource("cifar10-valid", str(tmp_path))
    train, valid = load_dataset(source, train=True, augment=False), load_dataset(source, train=False)
    assert (len(train), len(valid)) == (30, 30)
    cifar = load_dataset(DataSource("cifar10", str(tmp_path)), train=True, augment=False)
    first_valid = halves["valid"][1][0]
    assert int(valid[0][1]) == int(cifar[first_valid][1])
    mean, std = torch.tensor(INFO["cifar10-valid"].mean), torch.tensor(INFO["cifar10-valid"].std)
    raw = cifar[first_valid][0] * torch.tensor(INFO["cifar10"].std).view(3, 1, 1) + torch.tensor(INFO["cifar10"].mean).view(3, 1, 1)
    torch.testing.assert_close(valid[0][0], (raw - mean.view(3, 1, 1)) / std.view(3, 1, 1), atol=1e-4, rtol=0)
    assert INFO["cifar10-valid"].mean == (round(125.3 / 255, 4), round(123.0 / 255, 4), round(113.9 / 255, 4))
    (tmp_path / "cifar-split.txt").unlink()
    with pytest.raises(DataError, match="cifar10-valid needs NAS-Bench-201's split file"):
        check_available(source)


def test_imagenet16_120_keeps_the_first_120_classes_of_its_16px_batches(tmp_path):
    write_imagenet16(tmp_path)
    source = DataSource("ImageNet16-120", str(tmp_path))
    seen = check_available(source)
    train, test = load_dataset(source, train=True), load_dataset(source, train=False)
    assert seen.n_train == len(train) and 0 < len(train) < 300 and 0 < len(test) < 30
    x, y = train[0]
    assert x.shape == (3, 16, 16) and 0 <= int(y) < 120
    assert max(int(train[i][1]) for i in range(len(train))) < 120
    assert INFO["ImageNet16-120"].num_classes == 120 and INFO["ImageNet16-120"].image_size == 16


def test_the_benchmark_figures_are_the_archives_and_describe_prints_them(tmp_path, capsys):
    cells = [CELL, "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"]
    expected = write_nats_archive(tmp_path / "nats", cells)
    assert main(["describe", CELL, "--nb201-bench", str(tmp_path / "nats")]) == 0
    out = capsys.readouterr().out
    for key, value in expected[CELL].items():
        assert f"{key}: {value:.2f}%" in out
    missing = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert main(["describe", missing, "--nb201-bench", str(tmp_path / "nats")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cell {missing} is not in the archive" in err[0]


def test_a_folder_that_is_not_an_archive_is_one_line_and_no_archive_stops_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "junk").mkdir()
    assert main(["describe", CELL, "--nb201-bench", str(tmp_path / "junk")]) == 2
    assert "has no meta.pickle.pbz2: it is not NATS-Bench's fast-mode topology archive" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    assert resolve_archive("") == ""  # no archive where nats_bench looks: a search just logs no bench_* figures
    assert main(["describe", CELL]) == 0 and "no archive" in capsys.readouterr().out
    expected = write_nats_archive(tmp_path / "empty" / "NATS-tss-v1_0-3ffb9-simple", every_cell(), records=5)
    assert resolve_archive("") == str((tmp_path / "empty" / "NATS-tss-v1_0-3ffb9-simple").resolve())
    assert main(["describe", CELL]) == 0
    assert f"bench_cifar10_valid: {expected[CELL]['bench_cifar10_valid']:.2f}%" in capsys.readouterr().out


def test_large_inputs_enter_the_evaluation_network_through_the_imagenet_stem():
    from sddarts.search_spaces import BUILTIN_GENOTYPES
    from sddarts.search_spaces.network import DiscreteNetwork

    small = DiscreteNetwork(BUILTIN_GENOTYPES["DARTS_V2"], C=8, num_classes=3, layers=5, image_size=32)
    large = DiscreteNetwork(BUILTIN_GENOTYPES["DARTS_V2"], C=8, num_classes=3, layers=5, image_size=96)
    assert small.stem1 is None and large.stem1 is not None
    strides = [m.stride[0] for m in [*large.stem.modules(), *large.stem1.modules()] if isinstance(m, torch.nn.Conv2d)]
    assert strides == [2, 2, 2]
    large.eval()
    seen = {}
    large.cells[0].register_forward_hook(lambda m, i, o: seen.update(side=o.shape[-1]))
    assert large(torch.rand(2, 3, 96, 96))[0].shape == (2, 3) and seen["side"] == 12  # 96 / 8: cells run at 1/8


def test_the_in_process_searcher_reads_an_image_folder_once_and_records_its_statistics(tmp_path):
    from sddarts.trainables.sd_darts.searcher import Searcher

    root = write_image_folder(tmp_path / "pets")
    searcher = Searcher(dataset="imagefolder", data_dir=str(root), image_size=16, epochs=1, C=4, layers=3, batch_size=8,
                        steps_per_epoch=2, say=lambda _: None)
    expected = check_available(DataSource("imagefolder", str(root), 16)).info.mean
    assert [float(v) for v in searcher.cfg.data_mean.split(",")] == pytest.approx(expected, abs=1e-4)
    (metrics,) = searcher.run()
    assert searcher.net.classifier.out_features == 3 and 0 <= metrics["val_acc"] <= 100
