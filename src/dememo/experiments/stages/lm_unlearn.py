"""The lm-unlearn stage: one task forgotten from a fine-tuned LM stage (input 'model') with
RT, GA, NPO or FT (dememo.lm.jobs.unlearn_lm_or_load); metrics: test accuracy and share of
"yes" answers on the forgotten task ('accuracy' / 'yes_share', 'forget') and on the retained
tasks (split 'retain')."""

from __future__ import annotations

from dememo.experiments.stages import base
from dememo.lm.jobs import unlearn_lm_or_load
from dememo.lm.unlearn import lm_unlearn_config


def lm_unlearn_stage(model: base.Stage, method: str, task: str, **options: object) -> base.Stage:
    """An lm-unlearn stage (options validated now, so a bad spec fails before anything runs)."""
    config = {"method": method, "task": task,
              "options": lm_unlearn_config(method, **options).model_dump(mode="json")}  # fmt: skip
    return base.Stage("lm-unlearn", config, {"model": model.key}, label=f"lm-unlearn {method} forgets {task}")


@base.register_stage_kind
class LMUnlearn(base.StageKind):
    name = "lm-unlearn"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        parent = context.load(inputs["model"])
        unlearned = unlearn_lm_or_load(parent, config["method"], config["task"], context.store,
                                       context.torch_device, **config["options"])  # fmt: skip
        metrics = unlearned.artifact.metrics
        values = {(name, split): metrics[f"{split}_{name}"] for split in ("forget", "retain")
                  for name in ("accuracy", "yes_share") if f"{split}_{name}" in metrics}  # fmt: skip
        values[("seconds", "")] = metrics["seconds"]
        return context.output(unlearned.artifact.path, values)
