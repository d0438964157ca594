"""Fuzzing the loaders: random truncations and byte flips of a small real tar.gz and
plain tar image archive, a gzipped IDX file and a CIFAR batch file. Every outcome
must be a correct load or a dememo error (never another exception). Where the
format carries checksums (gzip's CRC-32, tar's header checksums, PNG/zlib's), a
load that succeeds must give exactly the original data; CIFAR batches and the
padding of plain tars carry none, so there a load only has to be a valid set.

The number of cases is recorded in docs/robustness.md."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from dememo.data.formats import cifar_imageset, idx_imageset, imagefolder_dataset
from dememo.errors import DememoError
from tests.fixtures import image_tree, write_idx, write_image_tar

CASES_PER_FILE = 1000
CLASSES = tuple(str(i) for i in range(10))


def mutations(blob: bytes, rng: random.Random, count: int):
    """(description, mutated bytes): truncations, then one to three byte flips."""
    for _ in range(count // 2):
        cut = rng.randrange(len(blob))
        yield f"truncated to {cut}", blob[:cut]
    for _ in range(count - count // 2):
        mutated = bytearray(blob)
        places = [rng.randrange(len(blob)) for _ in range(rng.randint(1, 3))]
        for place in places:
            mutated[place] ^= rng.randrange(1, 256)
        yield f"flipped bytes {places}", bytes(mutated)


def tensors(data) -> list[torch.Tensor]:
    sets = [data] if not hasattr(data, "train") else [data.train, data.test]
    return [t for s in sets for t in (s.images, s.labels)]


def fuzz(path: Path, load: Callable[[], object], exact: bool, seed: int) -> tuple[int, list[str]]:
    """Run every mutation of ``path``; returns (cases, failures)."""
    blob = path.read_bytes()
    expected = tensors(load())
    failures = []
    for description, mutated in mutations(blob, random.Random(seed), CASES_PER_FILE):
        path.write_bytes(mutated)
        try:
            loaded = tensors(load())
        except DememoError:
            continue
        except Exception as error:  # the failure this test exists to catch
            failures.append(f"{path.name} {description}: {type(error).__name__}: {error}")
            continue
        same = len(loaded) == len(expected) and all(
            a.shape == b.shape and torch.equal(a, b) for a, b in zip(loaded, expected, strict=True)
        )
        if exact and not same:
            failures.append(f"{path.name} {description}: loaded different data without an error")
    path.write_bytes(blob)
    return CASES_PER_FILE, failures


def build_archive(folder: Path, compressed: bool) -> Path:
    tree = image_tree(per_class=2, size=(6, 6))
    path = write_image_tar(folder / ("set.tar.gz" if compressed else "set.tar"), tree)
    if not compressed:  # write_image_tar always gzips: store the plain tar it holds
        import gzip

        path.write_bytes(gzip.decompress(path.read_bytes()))
    return path


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "idx", "cifar"])
def test_mutated_files_load_correctly_or_raise_dememo_errors(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind in ("tar.gz", "tar"):
        path = build_archive(tmp_path, kind == "tar.gz")
        cases, failures = fuzz(path, lambda: imagefolder_dataset(path, "set"), exact=True, seed=1)
    elif kind == "idx":
        path = tmp_path / "images-idx3-ubyte.gz"
        write_idx(path, rng.integers(0, 256, (6, 5, 5)))
        write_idx(tmp_path / "labels-idx1-ubyte.gz", rng.integers(0, 10, 6))
        load = lambda: idx_imageset(path, tmp_path / "labels-idx1-ubyte.gz", CLASSES, "idx")  # noqa: E731
        cases, failures = fuzz(path, load, exact=True, seed=2)
    else:
        path = tmp_path / "data_batch_1"
        batch = {"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8), "labels": [1, 2, 3, 4]}
        path.write_bytes(pickle.dumps(batch))
        cases, failures = fuzz(
            path, lambda: cifar_imageset([path], "labels", CLASSES, "c"), exact=False, seed=3
        )
    assert cases == CASES_PER_FILE
    assert not failures, f"{len(failures)} of {cases} cases failed, e.g. " + " | ".join(failures[:5])
