"""The unlearn stage: one forgetting target of a scenario, unlearned from a Before model.

Config: the method, its raw options (validated when the stage is planned; RT's recipe
defaults to the parent's at run time), the scenario settings, the class and the forget
set (Du or Dc). Metrics: accuracy (%) on each of the target's evaluation sets, split
by set name (the columns of Tables 10-17), its size (``n`` by set name) and the unlearning cost.
"""

from __future__ import annotations

from typing import Any

from dememo.data.scenarios import ScenarioSettings
from dememo.experiments.stages import base
from dememo.pipeline import TrainConfig
from dememo.runtime import Precision
from dememo.unlearn.base import make_config
from dememo.unlearn.jobs import unlearn_or_load
from dememo.unlearn.scenario_data import scenario_data


def unlearn_stage(
    model: base.Stage,
    method: str,
    scenario: ScenarioSettings,
    cls: int,
    part: str,
    options: dict[str, Any] | None = None,
    precision: Precision = "fp32",
    label: str = "",
) -> base.Stage:
    """Unlearn ``part`` (Du or Dc) of class ``cls`` from the model a train stage made."""
    options = dict(options or {})
    make_config(method, **options)  # names a bad option now, not mid-graph
    config = {"method": method, "options": options, "scenario": scenario.model_dump(mode="json"),
              "cls": cls, "part": part, "precision": precision}  # fmt: skip
    return base.Stage("unlearn", config, {"model": model.key},
                 label=f"unlearn {label or method} class {cls} {part}")  # fmt: skip


@base.register_stage_kind
class Unlearn(base.StageKind):
    name = "unlearn"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        parent = context.load(inputs["model"])
        dataset = context.dataset(TrainConfig.model_validate(parent.manifest["config"]).dataset)
        settings = ScenarioSettings.model_validate(config["scenario"])
        data = scenario_data(parent, dataset, context.store, settings)
        target = data.scenario.target(config["cls"], config["part"])
        device = context.torch_device
        result = unlearn_or_load(config["method"], parent, data.released, target.forget, target.retain,
                                 context.store, device=device, precision=config["precision"],
                                 **config["options"])  # fmt: skip
        values = data.evaluate(result.model, target, device)
        metrics = {("accuracy", name): value for name, value in values.items()}
        metrics.update({("n", e.name): float(len(e.indices)) for e in target.evals})  # sample sizes
        metrics[("unlearn_seconds", "")] = result.record["seconds"]
        return context.output(result.artifact.path, metrics)
