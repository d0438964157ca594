"""Export a protected release as a lossless PNG image folder that anyone can publish.

Layout (readable back with the ``imagefolder`` dataset, bit for bit)::

    DIR/manifest.json                 what made the release, and the SHA-256 of every file
    DIR/train/<class>/<index>.png     the protected training split
    DIR/test/<class>/<index>.png      the test split, unchanged

``<index>`` is the sample's position in its split, zero-padded so that the
imagefolder reader's name order is the split order within each class. The reader
lists samples class by class, so a split whose labels are interleaved (CIFAR-10)
reads back as its stable sort by label, with every image and label unchanged. Class folders are the class
names when these are safe folder names already in sorted order (the reader sorts
them); otherwise they are ``<label>_<name>`` with unsafe characters replaced, so
that labels still read back unchanged (the manifest maps folders to names).
The folder is written atomically: an interrupted export leaves nothing, and
nothing of dememo's is left beside it (its lock and temporary folder are removed).
Folders get the usual mode 0777 and files 0666, less the umask. ``dememo verify DIR``
(and loading DIR as an imagefolder) checks every file against the manifest.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import dememo
from dememo.atomic import atomic_directory
from dememo.data.imageset import ImageSet
from dememo.data.release import FORMAT, MANIFEST, sha256_bytes
from dememo.errors import ConfigError
from dememo.paths import check_writable
from dememo.progress import progress
from dememo.protect.jobs import ProtectedData

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


def class_folders(classes: tuple[str, ...]) -> list[str]:
    """Folder names whose sorted order is the label order."""
    safe = all(name and name not in (".", "..") and not _UNSAFE.search(name) for name in classes)
    if safe and list(classes) == sorted(classes):
        return list(classes)
    width = len(str(len(classes) - 1))
    return [f"{label:0{width}d}_{_UNSAFE.sub('_', name)}" for label, name in enumerate(classes)]


def release_manifest(protected: ProtectedData, dataset: str) -> dict[str, Any]:
    """Method, options, perturbation hash, covered indices, budget and dememo version."""
    perturbation, job = protected.perturbation, protected.artifact.manifest["config"]
    return {
        "dememo_version": dememo.__version__,
        "dataset": dataset,
        "method": perturbation.method,
        "options": job["options"],
        "precision": job["precision"],
        "train_per_class": job["train_per_class"],
        "perturbation_hash": protected.key,
        "budget": perturbation.budget,
        "budget_is_linf_bound": perturbation.linf_bound,
        "covered_indices": perturbation.indices.tolist(),
    }


def export_release(directory: Path, train: ImageSet, test: ImageSet, manifest: dict[str, Any]) -> Path:
    """Write ``train`` (the protected split) and ``test`` as PNG folders plus ``manifest``."""
    directory = check_export_target(directory)
    folders = class_folders(train.classes)
    with atomic_directory(directory) as tmp:
        files: dict[str, str] = {}
        for split, data in (("train", train), ("test", test)):
            files.update(_write_split(tmp, split, data, folders, f"export: {split}"))
        counts = {"train": len(train), "test": len(test)}
        full = {
            "format": FORMAT,
            **manifest,
            "classes": dict(zip(folders, train.classes, strict=True)),
            "images": counts,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=1))
    return directory


def check_export_target(directory: Path, data_root: Path | None = None) -> Path:
    """Refuse a folder that exists and is neither empty nor an earlier release (it is replaced),
    and one inside ``data_root`` or holding it (the next load would read the release as more
    data, or the export would replace the data)."""
    directory = Path(directory)
    if data_root is not None:
        target, root = directory.resolve(), Path(data_root).resolve()
        if target == root or target.is_relative_to(root) or root.is_relative_to(target):
            where = "is" if target == root else "lies inside" if target.is_relative_to(root) else "holds"
            raise ConfigError(
                f"export: {directory} {where} the data root {data_root}; choose a folder outside it "
                "(a release inside the data would be read back as more training and test images)"
            )
    if directory.exists() and (not directory.is_dir() or _foreign(directory)):
        raise ConfigError(
            f"export: {directory} exists and is not a dememo release; choose a new folder "
            "(an earlier release in it would be replaced whole)"
        )
    check_writable(directory.parent, what="--export: the folder of")  # the release is built beside it
    return directory


def _foreign(directory: Path) -> bool:
    """True unless ``directory`` is empty or holds an earlier dememo release."""
    if not any(directory.iterdir()):
        return False
    try:
        return json.loads((directory / MANIFEST).read_text()).get("format") != FORMAT
    except (OSError, ValueError):
        return True


def _write_split(
    tmp: Path, split: str, data: ImageSet, folders: list[str], description: str
) -> dict[str, str]:
    """Write ``split``'s PNGs under ``tmp``; {path in the release: SHA-256}."""
    for folder in folders:
        (tmp / split / folder).mkdir(parents=True)
    width = len(str(max(len(data) - 1, 0)))
    pixels = data.images.permute(0, 2, 3, 1).numpy()
    files = {}
    for index in progress(range(len(data)), description):
        array = pixels[index]
        image = Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        name = f"{split}/{folders[int(data.labels[index])]}/{index:0{width}d}.png"
        (tmp / name).write_bytes(buffer.getvalue())
        files[name] = sha256_bytes(buffer.getvalue())
    return files
