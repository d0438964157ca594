"""Artifacts on disk: safetensors + a JSON manifest, named by their config hash.

Layout: ``<root>/<kind>/<config-hash>/{tensors.safetensors, manifest.json}``.
Both files are written into a temporary directory that is renamed into place,
so an artifact is either complete or absent. Loading checks the content hash
and never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as tensor_bytes

import dememo
from dememo.atomic import atomic_directory
from dememo.errors import ArtifactError, TrainingError

TENSORS = "tensors.safetensors"
MANIFEST = "manifest.json"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serializable config."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    return {
        "dememo": dememo.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest["metrics"]


class ArtifactStore:
    """A directory of artifacts, each named by the hash of the config that made it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, kind: str, config: dict[str, Any]) -> Path:
        return self.root / kind / config_hash(config)

    def exists(self, kind: str, config: dict[str, Any]) -> bool:
        return (self.path_for(kind, config) / MANIFEST).is_file()

    def save(
        self,
        kind: str,
        config: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        metrics: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Artifact:
        """Write an artifact atomically.

        Concurrent saves of one key are serialized by a lock; when another process
        finished a valid artifact for this key first, that one is kept and returned.
        A damaged one is replaced. A tensor holding NaN or infinity is refused before
        anything is written (``TrainingError``): no stage ever stores non-finite weights.
        """
        final = self.path_for(kind, config)
        plain = {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}
        check_finite(plain, f"{kind} {final.name}")
        with atomic_directory(final, keep_existing=_is_valid) as tmp:
            (tmp / TENSORS).write_bytes(tensor_bytes(plain))  # a full disk is an OSError (save_file: not)
            manifest = {
                "kind": kind,
                "config": json.loads(canonical_json(config)),
                "config_hash": config_hash(config),
                "seed": seed,
                "versions": versions(),
                "metrics": json.loads(canonical_json(metrics or {})),
                "content_sha256": file_sha256(tmp / TENSORS),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            manifest[MANIFEST_HASH] = manifest_sha256(manifest)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        stored = _read_manifest(final)
        if stored.get(MANIFEST_HASH) != manifest[MANIFEST_HASH]:
            return self.load_path(final)  # someone else finished it first: theirs is on disk
        return Artifact(final, manifest, plain)

    def load(self, kind: str, config: dict[str, Any]) -> Artifact | None:
        """The artifact for ``config``, or None when it was never made."""
        path = self.path_for(kind, config)
        return self.load_path(path, kind) if (path / MANIFEST).is_file() else None

    @staticmethod
    def load_path(path: str | Path, kind: str | None = None) -> Artifact:
        """Load an artifact directory, verifying everything its manifest claims.

        Checked: the manifest is the JSON object dememo wrote (its own hash matches,
        so edited config or metrics are refused), the config hashes to the folder's
        name, the kind is ``kind`` when given, the tensors file matches its content
        hash and parses as safetensors.
        """
        path = Path(path)
        if path.is_file():
            raise ArtifactError(f"{path}: a file; pass the artifact directory ({path.parent})")
        manifest = _read_manifest(path)
        problem = _manifest_problem(path, manifest)
        if problem:
            raise ArtifactError(f"{path}: {problem}")
        if kind is not None and manifest["kind"] != kind:
            raise ArtifactError(f"{path}: a {manifest['kind']!r} artifact, expected a {kind!r} artifact")
        tensor_file = path / TENSORS
        if not tensor_file.is_file():
            raise ArtifactError(f"{path}: {TENSORS} is missing")
        if file_sha256(tensor_file) != manifest["content_sha256"]:
            raise ArtifactError(f"{tensor_file}: content hash does not match its manifest")
        try:
            tensors = load_file(tensor_file)
        except Exception as error:  # safetensors raises its own error types for malformed files
            raise ArtifactError(f"{tensor_file}: not a readable safetensors file ({error})") from error
        return Artifact(path, manifest, tensors)


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Raise ``TrainingError`` naming the first floating-point tensor with NaN or infinite values."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise TrainingError(
                    f"{what} not saved: tensor {name!r} has {bad} non-finite values (NaN or infinity) "
                    f"of {tensor.numel()}; the run diverged (lower the learning rate or step size)"
                )


MANIFEST_HASH = "manifest_sha256"
MANIFEST_FIELDS = {"kind": str, "config": dict, "config_hash": str, "metrics": dict, "content_sha256": str}


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """Hash of every manifest field but itself: editing config or metrics breaks it."""
    body = {key: value for key, value in manifest.items() if key != MANIFEST_HASH}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no {MANIFEST}; not an artifact directory") from None
    except NotADirectoryError:
        raise ArtifactError(f"{path}: not a directory; pass an artifact directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path / MANIFEST}: unreadable or invalid JSON ({error})") from error
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path / MANIFEST}: expected a JSON object")
    return manifest


def _manifest_problem(path: Path, manifest: dict[str, Any]) -> str | None:
    """What is wrong with a manifest, or None when it is intact."""
    for field, kind in MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(field), kind):
            return f"{MANIFEST} lacks a valid {field!r} field"
    if manifest.get(MANIFEST_HASH) != manifest_sha256(manifest):
        return f"{MANIFEST} was edited or written by an older dememo (its own hash does not match)"
    if config_hash(manifest["config"]) != manifest["config_hash"] or path.name != manifest["config_hash"]:
        return f"the config does not hash to the folder's name {path.name!r}"
    return None


def _is_valid(path: Path) -> bool:
    """True for a complete, intact artifact directory (used to keep another writer's result)."""
    try:
        ArtifactStore.load_path(path)
    except ArtifactError:
        return False
    return True
