"""The manifest of an exported release and the check of its files against it.

``dememo protect --export DIR`` writes ``DIR/manifest.json`` with ``format`` =
``dememo-release-1`` and ``files``: the SHA-256 of every file of the release by its
``/``-separated path. ``dememo verify DIR`` and the imagefolder loader (for a folder
holding such a manifest) compare the files on disk with it, so an edited, deleted or
added image is named instead of read as data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dememo.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "dememo-release-1"


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def release_manifest_of(directory: Path) -> dict[str, Any] | None:
    """``directory``'s dememo release manifest, or None when it has none (or someone else's
    manifest.json); a damaged one that names the release format is a DataError."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        if FORMAT.encode() not in raw:
            return None  # someone else's manifest.json: not a release
        raise DataError(f"{path}: a damaged dememo release manifest (invalid JSON: {error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest


def expected_files(directory: Path) -> dict[str, str] | None:
    """{path: sha256} of a dememo release in ``directory``; None when it is not one or its
    manifest predates file hashes."""
    manifest = release_manifest_of(directory)
    if manifest is None or "files" not in manifest:
        return None
    files = manifest["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise DataError(f"{Path(directory) / MANIFEST}: field 'files' is not a map of paths to hashes")
    return files


def release_problems(directory: Path) -> tuple[int, list[str]]:
    """(files checked, one line per file that is edited, missing or not in the manifest)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder")
    manifest = release_manifest_of(directory)
    if manifest is None:
        raise DataError(f"{directory}: no dememo release manifest ({MANIFEST} with format {FORMAT})")
    files = expected_files(directory)
    if files is None:
        raise DataError(f"{directory / MANIFEST}: holds no file hashes (written by an older dememo)")
    problems = []
    for name, digest in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256_bytes(path.read_bytes()) != digest:
            problems.append(f"changed: {name} (its SHA-256 does not match the manifest)")
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        hidden = any(part.startswith(".") for part in name.split("/"))  # .DS_Store: never read as data
        if path.is_file() and not hidden and name != MANIFEST and name not in files:
            problems.append(f"not in the manifest: {name}")
    return len(files), problems
