"""Writers that build tiny datasets in each on-disk format the loaders read."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_fashion(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


def write_cifar10_batches(root: Path, per_batch: int = 8, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
        written[name] = batch
    return written


def write_cifar100(root: Path, n: int = 6, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                 "fine_labels": [int(v) for v in rng.integers(0, 100, n)]}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_tree(classes=("cat", "dog"), per_class: int = 3, size=(8, 8), seed: int = 0) -> dict:
    """{relative path: RGB array} for an ImageFolder with train/ and test/."""
    rng = np.random.default_rng(seed)
    tree = {}
    for split in ("train", "test"):
        for cls in classes:
            for i in range(per_class):
                tree[f"{split}/{cls}/{i:03d}.png"] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    return tree


def write_image_dir(root: Path, tree: dict) -> Path:
    for rel, array in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(array))
    return root


def write_image_tar(path: Path, tree: dict, prefix: str = "set", extra: dict | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        members = {f"{prefix}/{rel}": png_bytes(a) for rel, a in tree.items()} | (extra or {})
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path
