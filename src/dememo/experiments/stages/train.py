"""The train stage: a model trained on a clean or protected training split (dememo.pipeline)."""

from __future__ import annotations

from typing import Any

from dememo.experiments.stages.base import (
    Inputs,
    Stage,
    StageContext,
    StageKind,
    StageOutput,
    register_stage_kind,
    relative_artifact,
)
from dememo.pipeline import TrainConfig, train_or_load, training_split
from dememo.protect.perturbation import Perturbation
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore


def train_stage(config: TrainConfig, perturbation: Stage | None = None) -> Stage:
    """A train stage on the clean split, or on the release made by a protect stage."""
    inputs = {"perturbation": perturbation.key} if perturbation is not None else {}
    on = perturbation.config["method"] if perturbation is not None else "clean data"
    return Stage("train", config.model_dump(mode="json"), inputs, label=f"train {config.model} on {on}")


@register_stage_kind
class Train(StageKind):
    name = "train"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        train_config = TrainConfig.model_validate(config)
        dataset = context.dataset(train_config.dataset)
        protected = None
        if "perturbation" in inputs:
            artifact = ArtifactStore.load_path(context.artifacts / inputs["perturbation"].artifact)
            protected = Perturbation.from_artifact(artifact).apply(training_split(train_config, dataset))
            train_config = train_config.model_copy(update={"perturbation": artifact.manifest["config_hash"]})
        device = resolve_device(context.device)
        trained = train_or_load(train_config, dataset, context.store, device, protected)
        metrics = trained.artifact.metrics
        return StageOutput(
            relative_artifact(context, trained.artifact.path),
            {
                ("accuracy", "test"): metrics["test_accuracy"],
                ("accuracy", "train"): metrics["train_accuracy"],
                ("train_seconds", ""): metrics["train_seconds"],
            },
        )
