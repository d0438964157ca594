"""The stage protocol: one kind per lifecycle step (protect, train, unlearn, audit).

A ``Stage`` is a node of the experiment graph: its kind, a JSON config and the
keys of the stages it consumes. Its key hashes all three, so two experiments that
need the same protection or the same victim share one stage, and a rerun finds
what an earlier run finished. A ``StageKind`` runs a stage and returns a
``StageOutput``: the artifact it made (a path inside the artifact store) and flat
metrics. New kinds (unlearn, audit) are one file each, registered in STAGE_KINDS.

This module is all a kind's file needs of the protocol: it imports it once
(``from dememo.experiments.stages import base``) and uses ``base.Stage``,
``base.StageKind``, ``base.register_stage_kind`` and the types of ``run``
(``base.Config``, ``base.Inputs``, ``base.StageContext``, ``base.StageOutput``); the
context loads input artifacts (``load``), resolves the device (``torch_device``) and
files an artifact with its metrics as the stage's output (``output``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import torch

from dememo.data import load_dataset
from dememo.data.imageset import Dataset
from dememo.registry import Registry
from dememo.runtime import resolve_device
from dememo.store import Artifact, ArtifactStore, config_hash

Config = dict[str, Any]  # a stage's JSON config
Metrics = dict[tuple[str, str], float]  # (name, split) -> value; split "" when it has none
Inputs = dict[str, "StageOutput"]  # role -> the output of the stage filling it


@dataclass(frozen=True)
class Stage:
    """One node of the graph. ``inputs`` maps a role (e.g. 'perturbation') to a stage key."""

    kind: str
    config: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        return config_hash({"kind": self.kind, "config": self.config, "inputs": self.inputs})

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class StageOutput:
    artifact: str  # path relative to the artifact store root
    metrics: Metrics
    device: str = ""  # where it ran (set by the graph runner's executor)
    seconds: float | None = None  # the stage's own run time (set by the executor; not queue time)
    precision: str = ""  # what its artifact was trained or generated in: bf16 or fp32 (set by the executor)

    def to_json(self) -> dict[str, Any]:
        metrics = [[n, s, v] for (n, s), v in self.metrics.items()]
        return {"artifact": self.artifact, "metrics": metrics, "device": self.device, "seconds": self.seconds,
                "precision": self.precision}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageOutput:
        metrics = {(n, s): float(v) for n, s, v in data["metrics"]}
        return cls(data["artifact"], metrics, data.get("device", ""), data.get("seconds"),
                   data.get("precision", ""))  # fmt: skip


@dataclass(frozen=True)
class StageContext:
    """Where a stage finds data and artifacts, and what it runs on (picklable for Ray workers)."""

    artifacts: Path
    data_root: Path | None = None
    device: str = "auto"
    gpus_per_stage: float = 0.0
    preloaded: tuple[Dataset, ...] = field(default=(), compare=False, repr=False)  # local runs only

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.artifacts)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def dataset(self, name: str) -> Dataset:
        for dataset in self.preloaded:
            if dataset.name == name:
                return dataset
        return _load(name, self.data_root)

    def load(self, output: StageOutput) -> Artifact:
        """The artifact an input stage made (verified on load)."""
        return ArtifactStore.load_path(self.artifacts / output.artifact)

    def output(self, path: Path, metrics: Metrics) -> StageOutput:
        """This stage's output: the artifact at ``path`` (inside the store) and its metrics."""
        return StageOutput(relative_artifact(self, path), metrics)


@cache
def _load(name: str, root: Path | None) -> Dataset:
    return load_dataset(name, root)


@dataclass(frozen=True)
class Resources:
    """What one stage asks a scheduler for (Ray's num_cpus / num_gpus)."""

    cpus: float = 1.0
    gpus: float = 0.0


class StageKind(ABC):
    """Runs stages of one kind. Subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, config: Config, inputs: Inputs, context: StageContext) -> StageOutput:
        """Make (or reuse from the artifact store) this stage's artifact and measure it."""

    def resources(self, config: Config, context: StageContext) -> Resources:
        """What a scheduler reserves for one stage of this kind."""
        return Resources(cpus=1.0, gpus=context.gpus_per_stage)


STAGE_KINDS: Registry[StageKind] = Registry("stage kind")


def register_stage_kind(cls: type[StageKind]) -> type[StageKind]:
    STAGE_KINDS.register(cls.name)(cls())
    return cls


def relative_artifact(context: StageContext, path: Path) -> str:
    return str(Path(path).relative_to(context.artifacts))


def artifact_precision(context: StageContext, artifact: str) -> str:
    """The precision an artifact was trained or generated in, from its manifest's config
    (resolved to bf16 or fp32 by the jobs that make models, perturbations and unlearned
    models). Audit reports and language models are computed in fp32."""
    manifest = context.artifacts / artifact / "manifest.json"
    try:
        precision = json.loads(manifest.read_text())["config"].get("precision")
    except (OSError, ValueError, KeyError, AttributeError):
        return "fp32"
    return precision if precision in ("bf16", "fp32") else "fp32"
