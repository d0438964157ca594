"""GA: gradient ascent on the forget set (Thudi et al. 2022; Graves et al. 2021; the
paper runs 5 epochs and its scale is the learning rate)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.unlearn.base import Unlearner, Work, register_unlearner
from dememo.unlearn.ft import SGDUnlearnConfig
from dememo.unlearn.loops import sgd_steps, steps_for_epochs


class GradientAscentConfig(SGDUnlearnConfig):
    lr: float = Field(1.1e-5, gt=0)
    epochs: int = Field(5, ge=1)


@register_unlearner
class GradientAscent(Unlearner):
    name = "ga"
    description = "gradient ascent on the mean forget loss (5 epochs; the scale is the learning rate)"
    Config = GradientAscentConfig
    scale_option = "lr"

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        c = self.config
        steps = steps_for_epochs(len(forget), c.batch_size, c.epochs)
        samples = sgd_steps(model, data, forget, steps=steps, lr=c.lr, batch_size=c.batch_size,
                            momentum=c.momentum, weight_decay=c.weight_decay, ascent=True,
                            augment=c.augmentation(self.name), seed=c.seed, device=self.device,
                            precision=self.precision, description="ga")  # fmt: skip
        return Work(steps, samples, ("forget",))
