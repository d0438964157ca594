"""FT: fine-tune on the retain set (Golatkar et al. 2020; the paper runs 10 epochs and
its scale is the learning rate)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.unlearn.base import AugmentingConfig, Unlearner, Work, register_unlearner
from dememo.unlearn.loops import sgd_steps, steps_for_epochs


class SGDUnlearnConfig(AugmentingConfig):
    """SGD options. The paper gives only epochs and learning rates; momentum 0.9,
    weight decay 5e-4 and batch 256 are assumptions (see dememo.unlearn.settings). The
    batches are augmented like the parent's training by default (``augment``), as in
    the official unlearning code (OPTML-Group Unlearn-Sparse / Unlearn-Saliency, whose
    retain and forget loaders keep the training transforms); also an assumption."""

    lr: float = Field(gt=0)
    epochs: int = Field(ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)


class FineTuneConfig(SGDUnlearnConfig):
    lr: float = Field(0.015, gt=0)
    epochs: int = Field(10, ge=1)


@register_unlearner
class FineTune(Unlearner):
    name = "ft"
    description = "fine-tune on the retain set (10 epochs; the scale is the learning rate)"
    Config = FineTuneConfig
    scale_option = "lr"
    trains_on_retain = True

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        c = self.config
        steps = steps_for_epochs(len(retain), c.batch_size, c.epochs)
        samples = sgd_steps(model, data, retain, steps=steps, lr=c.lr, batch_size=c.batch_size,
                            momentum=c.momentum, weight_decay=c.weight_decay,
                            augment=c.augmentation(self.name), seed=c.seed, device=self.device,
                            precision=self.precision, description="ft")  # fmt: skip
        return Work(steps, samples, ("retain",))
