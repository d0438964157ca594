"""The protect stage: a perturbation of a training split (dememo.protect.jobs)."""

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
from dememo.protect.jobs import protect_job_config, protect_or_load
from dememo.runtime import Precision, resolve_device


def protect_stage(
    method: str, dataset: str, train_per_class: int | None, precision: Precision = "fp32", **options: object
) -> Stage:
    """A protect stage; its config is the perturbation's own identity (options validated now)."""
    config = protect_job_config(method, dataset, train_per_class, precision, **options)
    return Stage("protect", config, label=f"protect {method} on {dataset}")


@register_stage_kind
class Protect(StageKind):
    name = "protect"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        dataset = context.dataset(config["dataset"])
        train_set = dataset.train.head(config["train_per_class"])
        result = protect_or_load(
            config["method"], dataset, train_set, context.store, train_per_class=config["train_per_class"],
            device=resolve_device(context.device), precision=config["precision"], **config["options"],
        )  # fmt: skip
        metrics = result.artifact.metrics
        return StageOutput(
            relative_artifact(context, result.artifact.path),
            {
                ("generation_seconds", ""): metrics["seconds"],
                ("covered", "train"): metrics["covered"],
                ("changed_images", "train"): metrics["changed_images"],
                ("mean_abs_change_uint8", "train"): metrics["mean_abs_change_uint8"],
            },
        )
