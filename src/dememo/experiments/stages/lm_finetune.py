"""The lm-finetune stage: a causal LM fine-tuned on every task's clean or RegText-protected
examples (dememo.lm.jobs.finetune_or_load); metrics per task: test accuracy, share of "yes"
answers and test size ('accuracy' / 'yes_share' / 'test_size', split = task); on RegText
data the words inserted per text ('inserted_words': mean, min, max)."""

from __future__ import annotations

from dememo.experiments.stages import base
from dememo.lm.jobs import LMSetup, TrainingData, finetune_job_config, finetune_or_load
from dememo.lm.train import LMRecipe


def lm_finetune_stage(
    setup: LMSetup, recipe: LMRecipe, training_data: TrainingData, seed: int = 0
) -> base.Stage:
    config = finetune_job_config(setup, recipe, training_data, seed)
    return base.Stage("lm-finetune", config, label=f"lm-finetune {setup.model} on {training_data} data")


@base.register_stage_kind
class LMFinetune(base.StageKind):
    name = "lm-finetune"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        trained = finetune_or_load(
            LMSetup.model_validate(config["setup"]), LMRecipe.model_validate(config["recipe"]),
            config["training_data"], context.store, context.torch_device, config["seed"],
        )  # fmt: skip
        metrics = trained.artifact.metrics
        values = {("accuracy", task): value for task, value in metrics["test_accuracy"].items()}
        values.update({("yes_share", task): value for task, value in metrics["test_yes_share"].items()})
        values.update({("test_size", task): value for task, value in metrics["test_size"].items()})
        values[("train_seconds", "")] = metrics["train_seconds"]
        if config["training_data"] == "protected":  # RegText's words inserted per text
            values.update({("inserted_words", k): v for k, v in metrics["data"]["inserted_words"].items()})
        return context.output(trained.artifact.path, values)
