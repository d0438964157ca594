"""RT: retrain from scratch on the retain set (the baseline of every table).

"From scratch" means a freshly constructed model: the architecture's own constructor
initialization under the RT seed, exactly what training a new model with that seed
starts from. (``reset_parameters()`` on the parent is not the same: it started
ResNet-18/DenseNet convolutions at 0.41x the constructor's standard deviation and kept
ViT-Tiny's trained ``cls_token`` and ``pos_embed``.)
"""

from __future__ import annotations

import torch
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.pipeline import fresh_model
from dememo.train import Recipe, train
from dememo.unlearn.base import UnlearnConfig, Unlearner, Work, register_unlearner


class RetrainConfig(UnlearnConfig):
    recipe: Recipe | None = None  # the parent's training recipe (unlearn_or_load fills it in)
    architecture: str | None = None  # the parent's registered model name (unlearn_or_load fills it in)


@register_unlearner
class Retrain(Unlearner):
    name = "rt"
    description = (
        "retrain a freshly initialized model on the retain set with the parent's recipe (the baseline)"
    )
    Config = RetrainConfig
    trains_on_retain = True

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        c = self.config
        if c.recipe is None or c.architecture is None:
            raise ConfigError("rt: needs the parent's training recipe and architecture "
                              "(options recipe=... and architecture=...)")  # fmt: skip
        if len(retain) == 0:
            raise ConfigError("rt: the retain set is empty")
        model.load_state_dict(fresh_model(c.architecture, data, c.seed).state_dict())
        result = train(model, data, c.recipe, seed=c.seed, device=self.device, precision=self.precision,
                       indices=retain, description="rt: retraining")  # fmt: skip
        return Work(result.steps, len(retain) * result.epochs, ("retain",),
                    {"epoch_losses": result.losses})  # fmt: skip
