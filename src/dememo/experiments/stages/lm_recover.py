"""The lm-recover stage: the recovery attack's curve for one unlearned LM (input 'model');
metrics per eta: ('task_accuracy', 'eta=<eta>') on the forgotten task's test examples and
('distance', 'eta=<eta>') reached (dememo.lm.jobs.recover_or_load)."""

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
from dememo.lm.jobs import RecoveryConfig, recover_or_load
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore


def eta_split(eta: float) -> str:
    return f"eta={eta:g}"


def lm_recover_stage(model: Stage, config: RecoveryConfig) -> Stage:
    label = f"lm-recover {model.config['method']} on {model.config['task']}"
    return Stage("lm-recover", config.model_dump(mode="json"), {"model": model.key}, label=label)


@register_stage_kind
class LMRecover(StageKind):
    name = "lm-recover"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        target = ArtifactStore.load_path(context.artifacts / inputs["model"].artifact)
        curve = recover_or_load(target, RecoveryConfig.model_validate(config), context.store,
                                resolve_device(context.device))  # fmt: skip
        m = curve.metrics
        values = {}
        for eta, acc, distance in zip(m["etas"], m["accuracies"], m["distances"], strict=True):
            values[("task_accuracy", eta_split(eta))] = acc
            values[("distance", eta_split(eta))] = distance
        return StageOutput(relative_artifact(context, curve.path), values)
