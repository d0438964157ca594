"""The train stage: a model trained on a clean or protected training split (dememo.pipeline).

With a scenario (section 6.2.1's subset or class level) only the scenario's protected
positions carry the perturbation: the interplay studies' Before model.
"""

from __future__ import annotations

from dememo.data.scenarios import ScenarioSettings, build_scenario
from dememo.experiments.stages import base
from dememo.pipeline import TrainConfig, test_split, train_or_load, training_split
from dememo.protect.perturbation import Perturbation


def train_stage(
    config: TrainConfig, perturbation: base.Stage | None = None, scenario: ScenarioSettings | None = None
) -> base.Stage:
    """A train stage on the clean split, or on the release made by a protect stage
    (all of it, or the positions ``scenario`` protects)."""
    if scenario is not None and perturbation is None:
        raise ValueError("a scenario needs the protect stage whose perturbation it places")
    inputs = {"perturbation": perturbation.key} if perturbation is not None else {}
    on = perturbation.config["method"] if perturbation is not None else "clean data"
    where = f" ({scenario.level} level)" if scenario is not None else ""
    stage_config = {
        "train": config.model_dump(mode="json"),
        "scenario": scenario.model_dump(mode="json") if scenario is not None else None,
    }
    return base.Stage("train", stage_config, inputs, label=f"train {config.model} on {on}{where}")


@base.register_stage_kind
class Train(base.StageKind):
    name = "train"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        train_config = TrainConfig.model_validate(config["train"])
        dataset = context.dataset(train_config.dataset)
        protected = None
        if "perturbation" in inputs:
            artifact = context.load(inputs["perturbation"])
            train_set = training_split(train_config, dataset)
            protected = Perturbation.from_artifact(artifact).apply(train_set)
            mark = artifact.manifest["config_hash"]
            if config["scenario"] is not None:
                settings = ScenarioSettings.model_validate(config["scenario"])
                scenario = build_scenario(settings, train_set, test_split(train_config, dataset))
                protected = scenario.release(train_set, protected)
                mark = f"{mark}/{scenario.key}"
            train_config = train_config.model_copy(update={"perturbation": mark})
        device = context.torch_device
        trained = train_or_load(train_config, dataset, context.store, device, protected)
        metrics = trained.artifact.metrics
        return context.output(
            trained.artifact.path,
            {
                ("accuracy", "test"): metrics["test_accuracy"],
                ("accuracy", "train"): metrics["train_accuracy"],
                ("train_seconds", ""): metrics["train_seconds"],
                ("n", "test"): float(len(test_split(train_config, dataset))),  # sample size
            },
        )
