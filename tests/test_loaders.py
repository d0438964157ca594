"""Every loader, on fixtures built in each on-disk format, and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dememo.data import DATASETS, load_dataset
from dememo.data.cache import cached_dataset
from dememo.data.formats import imagefolder_dataset
from dememo.errors import ConfigError, DataError
from tests.fixtures import (
    image_tree,
    write_cifar10_batches,
    write_cifar100,
    write_fashion,
    write_image_dir,
    write_image_tar,
)


def test_digits_split_is_stratified_uint8(digits):
    assert digits.train.images.dtype == torch.uint8
    assert digits.train.images.shape[1:] == (1, 8, 8)
    assert len(digits.train) + len(digits.test) == 1797
    assert int(digits.train.images.max()) == 255
    assert torch.bincount(digits.test.labels).min() >= 50


def test_fashion_idx_round_trip(tmp_path):
    arrays = write_fashion(tmp_path / "fashion-mnist")
    data = load_dataset("fashion-mnist", tmp_path)
    assert data.train.images.shape == (20, 1, 28, 28)
    np.testing.assert_array_equal(data.train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    assert data.train.classes[9] == "Ankle boot"


def test_cifar10_python_batches(tmp_path):
    batches = write_cifar10_batches(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.train.images.shape == (40, 3, 32, 32)
    first = batches["data_batch_1"]["data"][0].reshape(3, 32, 32)
    np.testing.assert_array_equal(data.train.images[0].numpy(), first)
    assert data.test.labels.tolist() == batches["test_batch"]["labels"]


def test_cifar_batches_refuse_foreign_pickled_code(tmp_path):
    write_cifar10_batches(tmp_path)
    evil = b"cos\nsystem\n(S'echo pwned'\ntR."
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(evil)
    with pytest.raises(DataError, match="data_batch_3.*forbidden global"):
        load_dataset("cifar10", tmp_path)


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path)
    data = load_dataset("cifar100", tmp_path)
    assert data.train.num_classes == 100 and data.train.classes[5] == "c5"


@pytest.mark.parametrize("kind", ["dir", "tar"])
def test_imagefolder_directory_and_archive(tmp_path, kind):
    tree = image_tree()
    source = (
        write_image_dir(tmp_path / "set", tree)
        if kind == "dir"
        else write_image_tar(tmp_path / "set.tar.gz", tree)
    )
    data = load_dataset("imagefolder", source)
    assert data.train.classes == ("cat", "dog")
    assert data.train.images.shape == (6, 3, 8, 8)
    np.testing.assert_array_equal(data.train.images[3].permute(1, 2, 0).numpy(), tree["train/dog/000.png"])
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_cifar10_from_image_archive(tmp_path):
    write_image_tar(tmp_path / "cifar10-jpeg.tar.gz", image_tree(), prefix="cifar10-jpeg")
    assert len(load_dataset("cifar10", tmp_path).test) == 6


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'.*cifar10.*digits"):
        load_dataset("mnist")


def test_missing_data_root_names_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=r"cifar10: no data found under data root .*cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path / "nowhere")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("imagefolder", tmp_path / "nowhere")


def test_archive_rejects_parent_and_absolute_members(tmp_path):
    for bad in ("../evil.png", "/etc/evil.png", "set/train/../../evil.png"):
        path = write_image_tar(tmp_path / "bad.tar.gz", image_tree(), extra={bad: b"x"})
        with pytest.raises(DataError, match="unsafe member path"):
            load_dataset("imagefolder", path)
    assert not any((tmp_path.parent).glob("evil.png"))


def test_truncated_archive_is_named_and_not_cached(tmp_path, isolated_cache):
    path = write_image_tar(tmp_path / "set.tar.gz", image_tree(per_class=20, size=(16, 16)))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    before = set(isolated_cache.rglob("*"))
    with pytest.raises(DataError, match="set.tar.gz: truncated or corrupt archive"):
        load_dataset("imagefolder", path)
    assert set(isolated_cache.rglob("*")) == before


def test_corrupt_image_is_named(tmp_path):
    root = write_image_dir(tmp_path / "set", image_tree())
    (root / "train/cat/001.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="train/cat/001.png: cannot decode image"):
        imagefolder_dataset(root, "set")


def test_mixed_image_sizes_are_named(tmp_path):
    tree = image_tree()
    tree["train/dog/002.png"] = np.zeros((9, 8, 3), dtype=np.uint8)
    root = write_image_dir(tmp_path / "set", tree)
    with pytest.raises(DataError, match="train/dog/002.png: image is 9x8x3 but .* is 8x8x3"):
        imagefolder_dataset(root, "set")


def test_idx_length_mismatch_names_label_file(tmp_path):
    folder = tmp_path / "fashion-mnist"
    arrays = write_fashion(folder)
    from tests.fixtures import write_idx

    write_idx(folder / "train-labels-idx1-ubyte.gz", arrays["train-labels-idx1-ubyte.gz"][:-1])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: 19 labels for 20 images"):
        load_dataset("fashion-mnist", tmp_path)


def test_idx_truncated_file_is_named(tmp_path):
    folder = tmp_path / "fashion-mnist"
    write_fashion(folder)
    import gzip

    target = folder / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: IDX header promises"):
        load_dataset("fashion-mnist", tmp_path)


def test_labels_out_of_range_are_rejected(tmp_path):
    write_cifar10_batches(tmp_path)
    import pickle

    batch_path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = pickle.loads(batch_path.read_bytes())
    batch["labels"][0] = 10
    batch_path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"cifar10/test: labels must lie in \[0, 9\].*\[\d+, 10\]"):
        load_dataset("cifar10", tmp_path)


def test_cache_is_reused_and_failed_builds_leave_nothing(tmp_path):
    source = write_image_dir(tmp_path / "src", image_tree())
    calls = []

    def build():
        calls.append(1)
        return imagefolder_dataset(source, "set")

    first = cached_dataset(tmp_path / "cache", "set", [source], build)
    second = cached_dataset(tmp_path / "cache", "set", [source], build)
    assert len(calls) == 1
    assert torch.equal(first.train.images, second.train.images)

    def failing():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dataset(tmp_path / "cache2", "set", [source], failing)
    assert not list((tmp_path / "cache2").glob("*set-*"))


def test_every_registered_dataset_has_a_description():
    assert set(DATASETS) == {"cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder"}
    assert all(DATASETS.get(name).description for name in DATASETS)
