"""On-disk cache of decoded datasets (safetensors + JSON), written atomically."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file

from dememo.atomic import atomic_directory
from dememo.data.imageset import Dataset, ImageSet
from dememo.errors import DataError

CACHE_FORMAT = 1


def source_signature(paths: list[Path]) -> str:
    """A short hash of the source files' names, sizes and modification times."""
    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    for path in sorted(paths):
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                stat = file.stat()
                digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_dataset(cache_dir: Path, name: str, sources: list[Path], build: Callable[[], Dataset]) -> Dataset:
    """Load ``name`` from the cache, or build it, store it atomically and return it."""
    entry = Path(cache_dir) / f"{name}-{source_signature(sources)}"
    if (entry / "meta.json").is_file():
        return _load(entry)
    dataset = build()
    with atomic_directory(entry) as tmp:
        tensors = {}
        for split in ("train", "test"):
            part = dataset.split(split)
            tensors[f"{split}_images"] = part.images.contiguous()
            tensors[f"{split}_labels"] = part.labels.contiguous()
        save_file(tensors, tmp / "data.safetensors")
        meta = {
            "format": CACHE_FORMAT,
            "name": dataset.name,
            "classes": list(dataset.train.classes),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return dataset


def _load(entry: Path) -> Dataset:
    try:
        meta = json.loads((entry / "meta.json").read_text())
        tensors = load_file(entry / "data.safetensors")
    except (OSError, ValueError, RuntimeError) as error:
        raise DataError(f"{entry}: unreadable cache entry ({error}); delete it to rebuild") from error
    classes = tuple(meta["classes"])
    sets = {
        split: ImageSet(
            tensors[f"{split}_images"],
            tensors[f"{split}_labels"],
            classes,
            f"{meta['name']}/{split}",
        )
        for split in ("train", "test")
    }
    return Dataset(meta["name"], sets["train"], sets["test"])
