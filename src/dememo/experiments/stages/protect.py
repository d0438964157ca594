"""The protect stage: a perturbation of a training split (dememo.protect.jobs)."""

from __future__ import annotations

from dememo.experiments.stages import base
from dememo.protect.jobs import protect_job_config, protect_or_load
from dememo.runtime import Precision


def protect_stage(
    method: str, dataset: str, train_per_class: int | None, precision: Precision = "fp32", **options: object
) -> base.Stage:
    """A protect stage; its config is the perturbation's own identity (options validated now)."""
    config = protect_job_config(method, dataset, train_per_class, precision, **options)
    return base.Stage("protect", config, label=f"protect {method} on {dataset}")


@base.register_stage_kind
class Protect(base.StageKind):
    name = "protect"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        dataset = context.dataset(config["dataset"])
        train_set = dataset.train.head(config["train_per_class"])
        result = protect_or_load(
            config["method"], dataset, train_set, context.store, train_per_class=config["train_per_class"],
            device=context.torch_device, precision=config["precision"], **config["options"],
        )  # fmt: skip
        metrics = result.artifact.metrics
        return context.output(
            result.artifact.path,
            {
                ("generation_seconds", ""): metrics["seconds"],
                ("covered", "train"): metrics["covered"],
                ("changed_images", "train"): metrics["changed_images"],
                ("mean_abs_change_uint8", "train"): metrics["mean_abs_change_uint8"],
            },
        )
