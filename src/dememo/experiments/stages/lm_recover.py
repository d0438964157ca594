"""The lm-recover stage: the recovery attack's curve for one unlearned LM (input 'model');
metrics per eta: ('task_accuracy', 'eta=<eta>') on the forgotten task's test examples and
('distance', 'eta=<eta>') reached (dememo.lm.jobs.recover_or_load)."""

from __future__ import annotations

from dememo.experiments.stages import base
from dememo.lm.jobs import RecoveryConfig, recover_or_load


def eta_split(eta: float) -> str:
    return f"eta={eta:g}"


def lm_recover_stage(model: base.Stage, config: RecoveryConfig) -> base.Stage:
    label = f"lm-recover {model.config['method']} on {model.config['task']}"
    return base.Stage("lm-recover", config.model_dump(mode="json"), {"model": model.key}, label=label)


@base.register_stage_kind
class LMRecover(base.StageKind):
    name = "lm-recover"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        target = context.load(inputs["model"])
        curve = recover_or_load(target, RecoveryConfig.model_validate(config), context.store,
                                context.torch_device)  # fmt: skip
        m = curve.metrics
        values = {}
        for eta, acc, distance in zip(m["etas"], m["accuracies"], m["distances"], strict=True):
            values[("task_accuracy", eta_split(eta))] = acc
            values[("distance", eta_split(eta))] = distance
        return context.output(curve.path, values)
