"""TAP: targeted adversarial poisoning (Fowl et al., NeurIPS 2021, "Adversarial
Examples Make Strong Poisons").

A surrogate is trained on the clean data; each covered image then gets targeted
PGD noise that pushes the surrogate towards class (y + 1) mod C, through
differentiable augmentation of ``x + delta`` (random shift of up to 4 px and
horizontal flip, drawn per image and per step). Defaults follow the official code
(lhfowl/adversarial_poisons): eps 8/255, 250 steps of 0.05 * eps, 8 restarts from
Gaussian starts, batches of 512, ResNet-18 trained from scratch for 40 epochs.
Restarts are compared per batch (the reference compares whole passes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dememo.data.augment import Augment, augment_batch
from dememo.data.imageset import ImageSet
from dememo.models import build_model
from dememo.progress import progress
from dememo.protect.base import ProtectConfig, Protector, register_protector
from dememo.protect.perturbation import Perturbation
from dememo.protect.pixel_pgd import frozen, pgd
from dememo.runtime import autocast, channels_last, seed_everything
from dememo.train import get_recipe, train


class TAPConfig(ProtectConfig):
    surrogate: str = "resnet18"
    surrogate_recipe: str = "tap-surrogate"
    surrogate_epochs: int | None = None  # override the recipe's epochs
    steps: int = 250
    step_fraction: float = 0.05  # step size as a fraction of the budget
    restarts: int = 8
    batch_size: int = 512
    augment: Augment = Augment(crop_padding=4, flip=True)


@register_protector
class TargetedAdversarialPoisoning(Protector):
    name = "tap"
    description = "targeted PGD noise towards class (y+1) mod C (Fowl et al. 2021)"
    Config = TAPConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg: TAPConfig = self.config
        seed_everything(cfg.seed)
        dev = self.device
        mean, std = data.channel_stats()
        model = build_model(cfg.surrogate, data.channels, data.num_classes, data.image_size, mean, std)
        overrides = {"epochs": cfg.surrogate_epochs} if cfg.surrogate_epochs else {}
        train(model, data, get_recipe(cfg.surrogate_recipe, **overrides), seed=cfg.seed, device=dev,
              precision=self.precision, description="tap: clean surrogate")  # fmt: skip
        generator = torch.Generator(device=dev).manual_seed(cfg.seed)

        def augment(x: torch.Tensor) -> torch.Tensor:
            return augment_batch(x, cfg.augment, generator) if cfg.augment.active else x

        deltas = []
        with frozen(model), autocast(dev, self.precision):
            for start in progress(range(0, len(indices), cfg.batch_size), "tap: poisoning batches"):
                part = indices[start : start + cfg.batch_size]
                clean = channels_last(data.images[part].to(dev).float() / 255)
                target = (data.labels[part].to(dev) + 1) % data.num_classes
                best, best_loss = None, float("inf")
                for _ in range(cfg.restarts):
                    init = torch.randn(clean.shape, device=dev, generator=generator) * cfg.budget
                    delta = pgd(model, clean, target, init, budget=cfg.budget,
                                step_size=cfg.step_fraction * cfg.budget, steps=cfg.steps,
                                minimize=True, transform=augment)  # fmt: skip
                    with torch.no_grad():
                        loss = float(F.cross_entropy(model(augment((clean + delta).clamp(0, 1))), target))
                    if loss < best_loss:
                        best, best_loss = delta, loss
                deltas.append(best.cpu())
        values = torch.cat(deltas)
        return Perturbation(self.name, "additive", indices.cpu(), torch.arange(len(indices)), values,
                            len(data), cfg.budget, config=cfg.model_dump())  # fmt: skip
