"""On-disk cache of decoded datasets (safetensors + JSON), written atomically.

An entry is named by the source files' signature and stores the content
fingerprint of what it holds; a load that does not reproduce that fingerprint
(edited, truncated or unreadable entry) prints a one-line notice and rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file
from safetensors.torch import save as tensor_bytes

from dememo.atomic import atomic_directory, directory_lock
from dememo.data.imageset import Dataset, ImageSet
from dememo.errors import DememoError
from dememo.paths import check_writable

CACHE_FORMAT = 2
META = "meta.json"
TENSORS = "data.safetensors"


def source_signature(paths: list[Path]) -> str:
    """A short hash of the source files' names, sizes, modification and change times.

    The change time (ctime) cannot be set back by tools, so a source rewritten
    with the same size and mtime still gets a new signature.
    """
    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    for path in sorted(paths):
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                stat = file.stat()
                digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_dataset(cache_dir: Path, name: str, sources: list[Path], build: Callable[[], Dataset]) -> Dataset:
    """Load ``name`` from the cache, or build it, store it atomically and return it."""
    entry = Path(cache_dir) / f"{name}-{source_signature(sources)}"
    if (entry / META).is_file():
        try:
            return _load(entry)
        except DememoError as error:
            print(f"dememo: cache entry {entry} is damaged ({error}); rebuilding it", file=sys.stderr)
            with directory_lock(entry):
                shutil.rmtree(entry, ignore_errors=True)
    check_writable(cache_dir, what="dataset cache (DEMEMO_CACHE)")  # before decoding, not after
    dataset = build()
    with atomic_directory(entry, keep_existing=lambda path: (path / META).is_file()) as tmp:
        tensors = {}
        for split in ("train", "test"):
            part = dataset.split(split)
            tensors[f"{split}_images"] = part.images.contiguous()
            tensors[f"{split}_labels"] = part.labels.contiguous()
        (tmp / TENSORS).write_bytes(tensor_bytes(tensors))  # a full disk is an OSError (save_file: not)
        meta = {
            "format": CACHE_FORMAT,
            "name": dataset.name,
            "classes": list(dataset.train.classes),
            "fingerprint": dataset.fingerprint,
        }
        (tmp / META).write_text(json.dumps(meta, indent=1))
    return dataset


def _load(entry: Path) -> Dataset:
    """The cached dataset, verified against its stored fingerprint (DememoError when not)."""
    try:
        meta = json.loads((entry / META).read_text())
        tensors = load_file(entry / TENSORS)
        classes = tuple(str(c) for c in meta["classes"])
        sets = {
            split: ImageSet(
                tensors[f"{split}_images"], tensors[f"{split}_labels"], classes, f"{meta['name']}/{split}"
            )  # fmt: skip
            for split in ("train", "test")
        }
        dataset = Dataset(str(meta["name"]), sets["train"], sets["test"])
        expected = meta["fingerprint"]
    except DememoError:
        raise
    except Exception as error:  # any malformed meta.json or safetensors file
        raise DememoError(f"unreadable: {type(error).__name__}: {error}") from error
    if dataset.fingerprint != expected:
        raise DememoError("its contents do not match the fingerprint stored with it")
    return dataset
