"""Export a protected release as a lossless PNG image folder that anyone can publish.

Layout (readable back with the ``imagefolder`` dataset, bit for bit)::

    DIR/manifest.json                 what made the release
    DIR/train/<class>/<index>.png     the protected training split
    DIR/test/<class>/<index>.png      the test split, unchanged

``<index>`` is the sample's position in its split, zero-padded so that the
imagefolder reader's name order is the split order within each class. The reader
lists samples class by class, so a split whose labels are interleaved (CIFAR-10)
reads back as its stable sort by label, with every image and label unchanged. Class folders are the class
names when these are safe folder names already in sorted order (the reader sorts
them); otherwise they are ``<label>_<name>`` with unsafe characters replaced, so
that labels still read back unchanged (the manifest maps folders to names).
The folder is written atomically: an interrupted export leaves nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import dememo
from dememo.atomic import atomic_directory
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.progress import progress
from dememo.protect.jobs import ProtectedData

MANIFEST = "manifest.json"
FORMAT = "dememo-release-1"
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
        for split, data in (("train", train), ("test", test)):
            _write_split(tmp / split, data, folders, f"export: {split}")
        counts = {"train": len(train), "test": len(test)}
        full = {
            "format": FORMAT,
            **manifest,
            "classes": dict(zip(folders, train.classes, strict=True)),
            "images": counts,
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=1))
    return directory


def check_export_target(directory: Path) -> Path:
    """Refuse a folder that exists and is neither empty nor an earlier release (it is replaced)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or _foreign(directory)):
        raise ConfigError(
            f"export: {directory} exists and is not a dememo release; choose a new folder "
            "(an earlier release in it would be replaced whole)"
        )
    return directory


def _foreign(directory: Path) -> bool:
    """True unless ``directory`` is empty or holds an earlier dememo release."""
    if not any(directory.iterdir()):
        return False
    try:
        return json.loads((directory / MANIFEST).read_text()).get("format") != FORMAT
    except (OSError, ValueError):
        return True


def _write_split(root: Path, data: ImageSet, folders: list[str], description: str) -> None:
    for folder in folders:
        (root / folder).mkdir(parents=True)
    width = len(str(max(len(data) - 1, 0)))
    pixels = data.images.permute(0, 2, 3, 1).numpy()
    for index in progress(range(len(data)), description):
        array = pixels[index]
        image = Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array))
        image.save(root / folders[int(data.labels[index])] / f"{index:0{width}d}.png", format="PNG")
