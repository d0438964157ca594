"""Protect-or-reuse: perturbation artifacts named by the hash of what made them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from dememo.data.imageset import Dataset, ImageSet
from dememo.protect.base import make_config, protect
from dememo.protect.perturbation import Perturbation
from dememo.runtime import Precision, resolve_precision
from dememo.store import Artifact, ArtifactStore

PERTURBATION_KIND = "perturbation"


@dataclass
class ProtectedData:
    perturbation: Perturbation
    artifact: Artifact
    reused: bool

    @property
    def key(self) -> str:
        return self.artifact.manifest["config_hash"]


def protect_job_config(
    method: str, dataset: str, train_per_class: int | None, precision: Precision, **options: object
) -> dict:
    """The identity of a perturbation before the data is read: method, full validated options,
    precision, dataset name and subset size. ``protect_or_load`` adds the data's fingerprint."""
    config = make_config(method, **options)
    return {"method": method, "dataset": dataset, "train_per_class": train_per_class,
            "precision": precision, "options": config.model_dump(mode="json")}  # fmt: skip


def protect_or_load(
    method: str,
    dataset: Dataset,
    train_set: ImageSet,
    store: ArtifactStore,
    *,
    train_per_class: int | None = None,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    **options: object,
) -> ProtectedData:
    """Reuse the stored perturbation for this config, or generate and store it atomically.
    The key holds the precision resolved on ``device`` (bf16 or fp32, never 'auto')."""
    precision = resolve_precision(device, precision)
    job = protect_job_config(method, dataset.name, train_per_class, precision, **options)
    job["data"] = dataset.fingerprint  # other data under the same name gets its own artifact
    stored = store.load(PERTURBATION_KIND, job)
    if stored is not None:
        return ProtectedData(Perturbation.from_artifact(stored), stored, reused=True)
    started = time.perf_counter()
    perturbation = protect(method, train_set, device=device, precision=precision, **options)
    seconds = time.perf_counter() - started
    released = perturbation.apply(train_set)
    changed = (released.images != train_set.images).flatten(1).any(1)
    diff = (released.images.int() - train_set.images.int()).abs()
    metrics = {
        "perturbation": perturbation.metadata(),
        "seconds": seconds,
        "covered": len(perturbation.indices),
        "changed_images": int(changed.sum()),
        "max_abs_change_uint8": int(diff.max()),
        "mean_abs_change_uint8": float(diff.float().mean()),
    }
    artifact = store.save(
        PERTURBATION_KIND, job, perturbation.tensors(), metrics, seed=job["options"]["seed"]
    )
    return ProtectedData(perturbation, artifact, reused=False)
