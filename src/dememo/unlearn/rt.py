"""RT: retrain from scratch on the retain set (the baseline of every table)."""

from __future__ import annotations

import torch
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.runtime import seed_everything
from dememo.train import Recipe, train
from dememo.unlearn.base import UnlearnConfig, Unlearner, Work, register_unlearner


class RetrainConfig(UnlearnConfig):
    recipe: Recipe | None = None  # the parent's training recipe (unlearn_or_load fills it in)


def reinitialize(model: nn.Module, seed: int) -> None:
    """Fresh weights for every layer that has ``reset_parameters`` (seeded); buffers such
    as the input normalization, which hold no learned state, are kept."""
    seed_everything(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


@register_unlearner
class Retrain(Unlearner):
    name = "rt"
    description = "retrain from scratch on the retain set with the parent's recipe (the baseline)"
    Config = RetrainConfig

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        if self.config.recipe is None:
            raise ConfigError("rt: needs the training recipe (option recipe=...)")
        if len(retain) == 0:
            raise ConfigError("rt: the retain set is empty")
        reinitialize(model, self.config.seed)
        result = train(model, data, self.config.recipe, seed=self.config.seed, device=self.device,
                       precision=self.precision, indices=retain, description="rt: retraining")  # fmt: skip
        return Work(result.steps, len(retain) * result.epochs, ("retain",),
                    {"epoch_losses": result.losses})  # fmt: skip
