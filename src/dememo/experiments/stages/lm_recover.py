"""The lm-recover stage: the recovery attack's curve for one unlearned LM (input 'model');
metrics per eta (split 'eta=<eta>'): 'task_accuracy' and 'yes_share' on the forgotten task's
test examples, the absolute 'radius', the 'distance' reached and 'radius_reached' (0/1: as
the image recovery audits, so `dememo reproduce` warns about unreached radii)
(dememo.lm.jobs.recover_or_load)."""

from __future__ import annotations

from dememo.experiments.stages import base
from dememo.lm.jobs import RecoveryConfig, recover_or_load

METRICS = {"task_accuracy": "accuracy", "yes_share": "yes_share", "radius": "radius", "distance": "distance",
           "radius_reached": "reached"}  # stage metric -> RecoveryPoint field  # fmt: skip


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
        values = {(metric, eta_split(point["eta"])): float(point[field])
                  for point in curve.metrics["points"] for metric, field in METRICS.items()}  # fmt: skip
        return context.output(curve.path, values)
