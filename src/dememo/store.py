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
from safetensors.torch import load_file, save_file

import dememo
from dememo.atomic import atomic_directory
from dememo.errors import ArtifactError

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
        """Write an artifact atomically (replacing one with the same config)."""
        final = self.path_for(kind, config)
        plain = {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}
        with atomic_directory(final) as tmp:
            save_file(plain, tmp / TENSORS)
            manifest = {
                "kind": kind,
                "config": json.loads(canonical_json(config)),
                "config_hash": config_hash(config),
                "seed": seed,
                "versions": versions(),
                "metrics": metrics or {},
                "content_sha256": file_sha256(tmp / TENSORS),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return Artifact(final, manifest, plain)

    def load(self, kind: str, config: dict[str, Any]) -> Artifact | None:
        """The artifact for ``config``, or None when it was never made."""
        path = self.path_for(kind, config)
        return self.load_path(path) if (path / MANIFEST).is_file() else None

    @staticmethod
    def load_path(path: str | Path) -> Artifact:
        """Load an artifact directory, verifying its content hash."""
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            raise ArtifactError(f"{path}: no {MANIFEST}; not an artifact directory") from None
        except json.JSONDecodeError as error:
            raise ArtifactError(f"{path / MANIFEST}: invalid JSON ({error})") from error
        tensor_file = path / TENSORS
        if not tensor_file.is_file():
            raise ArtifactError(f"{path}: {TENSORS} is missing")
        if file_sha256(tensor_file) != manifest.get("content_sha256"):
            raise ArtifactError(f"{tensor_file}: content hash does not match its manifest")
        return Artifact(path, manifest, load_file(tensor_file))
