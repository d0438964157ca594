"""The lm-unlearn stage: one task forgotten from a fine-tuned LM stage (input 'model') with
RT, GA, NPO or FT (dememo.lm.jobs.unlearn_lm_or_load); metrics: test accuracy on the
forgotten task ('accuracy', 'forget') and on the retained tasks ('accuracy', 'retain')."""

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
from dememo.lm.jobs import unlearn_lm_or_load
from dememo.lm.unlearn import lm_unlearn_config
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore


def lm_unlearn_stage(model: Stage, method: str, task: str, **options: object) -> Stage:
    """An lm-unlearn stage (options validated now, so a bad spec fails before anything runs)."""
    config = {"method": method, "task": task,
              "options": lm_unlearn_config(method, **options).model_dump(mode="json")}  # fmt: skip
    return Stage("lm-unlearn", config, {"model": model.key}, label=f"lm-unlearn {method} forgets {task}")


@register_stage_kind
class LMUnlearn(StageKind):
    name = "lm-unlearn"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        parent = ArtifactStore.load_path(context.artifacts / inputs["model"].artifact)
        unlearned = unlearn_lm_or_load(parent, config["method"], config["task"], context.store,
                                       resolve_device(context.device), **config["options"])  # fmt: skip
        metrics = unlearned.artifact.metrics
        values = {("accuracy", "forget"): metrics["forget_accuracy"], ("seconds", ""): metrics["seconds"]}
        if metrics["retain_accuracy"] is not None:
            values[("accuracy", "retain")] = metrics["retain_accuracy"]
        return StageOutput(relative_artifact(context, unlearned.artifact.path), values)
