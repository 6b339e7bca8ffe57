"""Image folders as users have them: mixed PIL modes converted as torchvision's loaders convert
them, 16-bit images scaled by their range, the conversions counted and said before Ray starts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_files import write_image_folder
from sddarts.trainables.data.datasets import DataSource, check_available, load_dataset
from sddarts.trainables.data.image_folder import open_image


def _save(path, pixels, mode, **kw):
    from PIL import Image

    img = Image.fromarray(pixels) if mode == "I;16" else Image.fromarray(pixels, "L" if mode in ("P", "1") else mode)
    (img.convert(mode) if mode in ("P", "1") else img).save(path, **kw)


def test_a_mixed_mode_photo_folder_loads_as_rgb_and_counts_its_conversions(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=4)
    rng = np.random.default_rng(0)
    odd = {"L": (20, 20), "LA": (20, 20, 2), "RGBA": (20, 20, 4), "P": (20, 20)}
    for i, (mode, shape) in enumerate(odd.items()):
        _save(root / "train" / "cat" / f"odd{i}.png", rng.integers(0, 256, shape).astype(np.uint8), mode)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (20, 20, 3)).astype(np.uint8), "RGB").convert("CMYK").save(
        root / "train" / "dog" / "cmyk.jpg")
    seen = check_available(DataSource("imagefolder", str(root)))
    assert seen.info.in_channels == 3 and seen.converted == 5
    data = load_dataset(DataSource("imagefolder", str(root), 16, seen.info.mean, seen.info.std), train=True, augment=False)
    assert all(data[i][0].shape == (3, 16, 16) for i in range(len(data)))
    grey = open_image(str(root / "train" / "cat" / "odd0.png"), channels=3)
    r, g, b = (np.asarray(grey)[..., c] for c in range(3))
    assert np.array_equal(r, g) and np.array_equal(g, b)  # grey -> RGB repeats the channel


def test_sixteen_bit_images_keep_their_values_and_an_all_grey_folder_stays_grey(tmp_path):
    root = write_image_folder(tmp_path / "scans", mode="L", per_class=3)
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for cls in ("cat", "dog", "owl"):
            for f in (root / split / cls).iterdir():  # every image 16-bit uniform noise over 0..65535
                _save(f, rng.integers(0, 65536, (24, 24)).astype(np.uint16), "I;16")
    seen = check_available(DataSource("imagefolder", str(root)))
    assert seen.info.in_channels == 1
    # clipped to 8 bits this read 0.9985 and 0.0157; scaled, the mean is uniform noise's (the resize smooths the std)
    assert seen.info.mean[0] == pytest.approx(0.5, abs=0.03) and seen.info.std[0] > 0.15
    one = root / "train" / "cat" / "000.png"
    from PIL import Image

    raw = np.asarray(Image.open(one)).astype(np.float64)
    scaled = np.asarray(open_image(str(one))).astype(np.float64)
    assert np.abs(scaled - raw / 257).max() <= 0.5 + 1e-9  # scaled by the range, rounded: never clipped
    assert seen.converted == seen.n_train + seen.n_test  # every 16-bit image is scaled to 8 bits


def test_the_search_says_how_many_images_it_converted(tmp_path, capsys):
    from sddarts.platform.preflight import check_data
    from sddarts.trainables.config import SearchConfig

    root = write_image_folder(tmp_path / "photos", per_class=8)
    _save(root / "train" / "owl" / "grey.png", np.zeros((20, 20), np.uint8), "L")
    cfg = SearchConfig(dataset="imagefolder", data_dir=str(root), num_workers=1, batch_size=4).validate()
    checked = check_data(cfg)
    assert "note: 1 of " in capsys.readouterr().out and len(checked.data_mean.split(",")) == 3
    assert torch.is_tensor(load_dataset(DataSource.of(checked), train=True)[0][0])
