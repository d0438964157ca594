"""The dataset registry: where each dataset is found on disk and how it is decoded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dememo.data.cache import cached_dataset
from dememo.data.formats import cifar_imageset, idx_imageset, imagefolder_dataset, read_cifar_batch
from dememo.data.imageset import Dataset, ImageSet
from dememo.errors import DataError
from dememo.paths import cache_root, data_root
from dememo.registry import Registry

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
)  # fmt: skip
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    load: Callable[[Path, bool], Dataset]
    num_classes: int | None = None  # known without decoding (None: read from the data, e.g. imagefolder)


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _register(name: str, description: str, num_classes: int | None = None):
    def add(load: Callable[[Path, bool], Dataset]) -> Callable[[Path, bool], Dataset]:
        DATASETS.register(name)(DatasetSpec(name, description, load, num_classes))
        return load

    return add


def load_dataset(name: str, root: str | Path | None = None, download: bool = False) -> Dataset:
    """Load a registered dataset from ``root`` (see dememo.paths.data_root)."""
    spec = DATASETS.get(name)
    return spec.load(data_root(root), download)


def _download(name: str, root: Path, fetch: Callable[[], object]) -> None:
    """Run a torchvision download, turning any failure (offline, bad checksum) into one line."""
    try:
        fetch()
    except Exception as error:
        raise DataError(
            f"{name}: download into {root} failed ({type(error).__name__}: {error}); "
            "check the network or pass --data-root with the files"
        ) from error


def _cache_dir() -> Path:
    return cache_root() / "datasets"


def _missing(name: str, root: Path, looked: list[Path], hint: str) -> DataError:
    places = ", ".join(str(p) for p in looked)
    return DataError(f"{name}: no data found under data root {root} (looked for {places}). {hint}")


@_register("digits", "scikit-learn's 8x8 handwritten digits (1797 images, ships with sklearn)", 10)
def _digits(root: Path, download: bool) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.3, random_state=0, stratify=labels
    )
    classes = tuple(str(c) for c in range(10))

    def part(index: np.ndarray, split: str) -> ImageSet:
        index = np.sort(index)
        return ImageSet(
            torch.from_numpy(images[index]),
            torch.from_numpy(labels[index]),
            classes,
            f"digits/{split}",
        )

    return Dataset("digits", part(train_idx, "train"), part(test_idx, "test"))


def _cifar_folder_or_archive(root: Path, stem: str) -> Path | None:
    """root itself, root/<stem>/ or root/<stem>.tar.gz when it is an image folder."""
    for candidate in (root, root / stem, root / f"{stem}.tar.gz", root / f"{stem}.tgz"):
        if candidate.is_file() and candidate.name.endswith((".tar.gz", ".tgz", ".tar")):
            return candidate
        if candidate.is_dir() and (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return candidate
    return None


@_register("cifar10", "CIFAR-10: torchvision's cifar-10-batches-py, or an image folder/.tar.gz", 10)
def _cifar10(root: Path, download: bool) -> Dataset:
    batches = root / "cifar-10-batches-py"
    if not batches.is_dir():
        folder = _cifar_folder_or_archive(root, "cifar10-jpeg")
        if folder is not None:
            return cached_dataset(
                _cache_dir(), "cifar10", [folder], lambda: imagefolder_dataset(folder, "cifar10")
            )
        if not download:
            raise _missing(
                "cifar10",
                root,
                [batches, root / "cifar10-jpeg", root / "cifar10-jpeg.tar.gz"],
                "Pass --data-root, set DEMEMO_DATA, or use --download when online.",
            )
        from torchvision.datasets import CIFAR10

        _download("cifar10", root, lambda: CIFAR10(str(root), train=True, download=True))

    def build() -> Dataset:
        train = [batches / f"data_batch_{i}" for i in range(1, 6)]
        return Dataset(
            "cifar10",
            cifar_imageset(train, "labels", CIFAR10_CLASSES, "cifar10/train"),
            cifar_imageset([batches / "test_batch"], "labels", CIFAR10_CLASSES, "cifar10/test"),
        )

    return cached_dataset(_cache_dir(), "cifar10", [batches], build)


@_register("cifar100", "CIFAR-100 (fine labels) from torchvision's cifar-100-python", 100)
def _cifar100(root: Path, download: bool) -> Dataset:
    folder = root / "cifar-100-python"
    if not folder.is_dir():
        if not download:
            raise _missing("cifar100", root, [folder], "Pass --data-root or use --download when online.")
        from torchvision.datasets import CIFAR100

        _download("cifar100", root, lambda: CIFAR100(str(root), train=True, download=True))

    def build() -> Dataset:
        meta = read_cifar_batch(folder / "meta")
        if "fine_label_names" not in meta:
            raise DataError(f"{folder / 'meta'}: missing field 'fine_label_names'")
        classes = tuple(meta["fine_label_names"])
        return Dataset(
            "cifar100",
            cifar_imageset([folder / "train"], "fine_labels", classes, "cifar100/train"),
            cifar_imageset([folder / "test"], "fine_labels", classes, "cifar100/test"),
        )

    return cached_dataset(_cache_dir(), "cifar100", [folder], build)


@_register("fashion-mnist", "Fashion-MNIST from the IDX .gz files (Debian: dataset-fashion-mnist)", 10)
def _fashion(root: Path, download: bool) -> Dataset:
    candidates = [root / "fashion-mnist", root / "FashionMNIST" / "raw", FASHION_SYSTEM_DIR]
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip

    def files_in(folder: Path) -> list[Path] | None:
        """The four files in ``folder``; None when it holds none of them, an error when only some."""
        found = {stem: next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
                 for stem in names}  # fmt: skip
        missing = [stem for stem, match in found.items() if match is None]
        if len(missing) == len(names):
            return None
        if missing:
            raise DataError(
                f"fashion-mnist: {folder} lacks {', '.join(missing)} (.gz or plain); "
                "add them, or remove the folder to use another copy"
            )
        return list(found.values())

    files = next((f for f in map(files_in, candidates) if f is not None), None)
    if files is None and download:
        from torchvision.datasets import FashionMNIST

        _download("fashion-mnist", root, lambda: FashionMNIST(str(root), train=True, download=True))
        files = files_in(root / "FashionMNIST" / "raw")
    if files is None:
        raise _missing(
            "fashion-mnist",
            root,
            candidates,
            "Install it with 'apt-get install dataset-fashion-mnist' or use --download when online.",
        )

    def build() -> Dataset:
        return Dataset(
            "fashion-mnist",
            idx_imageset(files[0], files[1], FASHION_CLASSES, "fashion-mnist/train"),
            idx_imageset(files[2], files[3], FASHION_CLASSES, "fashion-mnist/test"),
        )

    return cached_dataset(_cache_dir(), "fashion-mnist", files, build)


@_register("imagefolder", "any folder or .tar.gz with train/<class>/<image> and test/<class>/<image>")
def _imagefolder(root: Path, download: bool) -> Dataset:
    if not root.exists():
        raise DataError(f"imagefolder: data root {root} does not exist (pass the folder or archive)")
    return cached_dataset(_cache_dir(), "imagefolder", [root], lambda: imagefolder_dataset(root, root.name))
