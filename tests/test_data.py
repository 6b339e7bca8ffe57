"""Datasets through the real loaders: digits (bundled) and CIFAR files written in CIFAR's format."""

import pickle

import pytest
import torch

from cifar_files import write_cifar
from sddarts.search_spaces.errors import DataError
from sddarts.trainables.data.datasets import (DataSource, check_available, digits_arrays, load_dataset, search_splits,
                                              train_and_measure_splits)


def test_digits_is_bundled_and_split():
    train, test = load_dataset(DataSource("digits"), train=True), load_dataset(DataSource("digits"), train=False)
    assert len(train) + len(test) == 1797 and len(test) == 360
    x, y = train[0]
    assert x.shape == (1, 8, 8) and 0 <= int(y) < 10


def test_digits_are_read_from_sklearns_file_as_load_digits_reads_them():
    from sklearn.datasets import load_digits

    images, target = digits_arrays()
    bunch = load_digits()
    assert (images == bunch.images).all() and (target == bunch.target).all() and images.shape == (1797, 8, 8)


@pytest.mark.parametrize("name,classes,n_train", [("cifar10", 10, 60), ("cifar100", 100, 12)])
def test_cifar_loads_from_its_own_format(tmp_path, name, classes, n_train):
    write_cifar(tmp_path, name)
    train = load_dataset(DataSource(name, str(tmp_path)), train=True)
    test = load_dataset(DataSource(name, str(tmp_path)), train=False)
    assert len(train) == n_train and len(test) == 12
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= int(y) < classes
    xt, _ = test[0]
    assert abs(float(xt.mean())) < 3  # normalised


def test_cifar_augmentation_and_cutout_change_the_image(tmp_path):
    write_cifar(tmp_path)
    plain = load_dataset(DataSource("cifar10", str(tmp_path)), train=True, augment=False)
    cut = load_dataset(DataSource("cifar10", str(tmp_path)), train=True, cutout=16)
    torch.manual_seed(0)
    assert not torch.equal(plain[0][0], cut[0][0])


def test_search_splits_three_ways_and_the_holdout_is_neither_trained_on_nor_augmented(tmp_path):
    write_cifar(tmp_path)
    splits = search_splits(DataSource("cifar10", str(tmp_path)), 0.5, 0.2, seed=0)
    w, a, held = splits.w_train.indices, splits.alpha_train.indices, splits.holdout.indices
    assert (len(held), len(w), len(a)) == (12, 24, 24)
    assert not set(w) & set(a) and not set(held) & (set(w) | set(a))
    plain = load_dataset(DataSource("cifar10", str(tmp_path)), train=True, augment=False)
    torch.testing.assert_close(splits.holdout[0][0], plain[held[0]][0])  # no crop, no flip
    torch.testing.assert_close(splits.holdout[0][0], splits.holdout[0][0])
    torch.manual_seed(0)
    assert any(not torch.equal(splits.w_train[i][0], plain[w[i]][0]) for i in range(4))  # augmented


def test_proxy_retrain_measures_on_the_searchs_holdout(tmp_path):
    write_cifar(tmp_path)
    splits = search_splits(DataSource("cifar10", str(tmp_path)), 0.5, 0.2, seed=3)
    train, measured = train_and_measure_splits(DataSource("cifar10", str(tmp_path)), 0.2, seed=3)
    assert measured.indices == splits.holdout.indices
    assert set(train.indices) == set(splits.w_train.indices) | set(splits.alpha_train.indices)
    train, test = train_and_measure_splits(DataSource("cifar10", str(tmp_path)), 0.0, seed=3)
    assert len(train) == 60 and len(test) == 12  # the evaluation stage: training split, then test split


def test_a_split_that_leaves_nothing_is_refused(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(DataError, match="holdout_portion 0.001 leaves an empty split"):
        search_splits(DataSource("cifar10", str(tmp_path)), 0.5, 0.001, seed=0)


def test_missing_data_dir_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="pass --download"):
        check_available(DataSource("cifar10", str(tmp_path / "nowhere")))


def test_malformed_batch_is_named(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="test_batch is not a CIFAR python batch"):
        check_available(DataSource("cifar10", str(tmp_path)))


def test_labels_out_of_range_are_rejected(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(path.read_bytes())
    entry[b"labels"][0] = 42
    path.write_bytes(pickle.dumps(entry))
    with pytest.raises(DataError, match=r"labels must be in \[0, 9\]"):
        load_dataset(DataSource("cifar10", str(tmp_path)), train=False)


def test_augment_on_device_leaves_the_loader_images_uncropped_and_the_device_crops_them(tmp_path):
    from sddarts.trainables.config import SearchConfig
    from sddarts.trainables.data.loaders import device_augment, to_device

    write_cifar(tmp_path)
    splits = search_splits(DataSource("cifar10", str(tmp_path)), 0.5, 0.2, seed=0, crop_flip=False)
    plain = load_dataset(DataSource("cifar10", str(tmp_path)), train=True, augment=False)
    for i in range(4):  # the loader's images are the plain ones
        torch.testing.assert_close(splits.w_train[i][0], plain[splits.w_train.indices[i]][0])
    cfg = SearchConfig(dataset="cifar10", data_dir=str(tmp_path), augment_on_device=True)
    x = torch.stack([splits.w_train[i][0] for i in range(8)])
    torch.manual_seed(1)
    crops, labels = to_device((x, torch.zeros(8)), torch.device("cpu"), augment=device_augment(cfg, torch.device("cpu")))
    assert crops.shape == x.shape and not torch.equal(crops, x) and labels.shape == (8,)
