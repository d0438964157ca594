"""TAP: targeted adversarial poisoning (Fowl et al., NeurIPS 2021, "Adversarial
Examples Make Strong Poisons").

A surrogate is trained on the clean data; each covered image then gets targeted
PGD noise that pushes the surrogate towards class (y + 1) mod C, through
differentiable augmentation of ``x + delta``. Behaviour and defaults follow the
official code (lhfowl/adversarial_poisons): eps 8/255, 250 steps of 0.05 * eps,
8 restarts from Gaussian starts, batches of 512, ResNet-18 trained from scratch
for 40 epochs. As there (``RandomTransform``), the augmentation is a continuous
translation by up to ``max_shift`` (4) pixels in each direction, resampled
bilinearly with zero padding, and a horizontal flip with probability 1/2, drawn
per image and per step. Restarts are compared on the whole pass: each restart
poisons every covered sample, and the restart with the lowest mean target loss
over all of them is kept for all (not the best restart per batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

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
    max_shift: float = Field(4.0, ge=0)  # pixels, continuous, per direction
    flip: bool = True


def translate_flip(
    images: torch.Tensor, max_shift: float, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Shift each image by a continuous offset in [-max_shift, max_shift] pixels per axis
    (bilinear, zero padding) and mirror it horizontally with probability 1/2; differentiable."""
    n, _, height, width = images.shape
    dev, dtype = images.device, images.dtype
    shift = (torch.rand(n, 2, device=dev, generator=generator) * 2 - 1) * max_shift
    scale = torch.ones(n, device=dev)
    if flip:
        scale = torch.where(torch.rand(n, device=dev, generator=generator) < 0.5, -scale, scale)
    zero = torch.zeros(n, device=dev)
    # align_corners=True: neighbouring pixels are 2 / (size - 1) apart in grid units
    dx, dy = shift[:, 0] * 2 / max(width - 1, 1), shift[:, 1] * 2 / max(height - 1, 1)
    theta = torch.stack([torch.stack([scale, zero, scale * dx], 1), torch.stack([zero, 1 + zero, dy], 1)], 1)
    grid = F.affine_grid(theta.to(dtype), list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


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
            return translate_flip(x, cfg.max_shift, cfg.flip, generator)

        starts = range(0, len(indices), cfg.batch_size)
        best, best_loss, losses = None, float("inf"), []
        with frozen(model), autocast(dev, self.precision):
            for restart in range(cfg.restarts):
                deltas, total = [], 0.0
                for start in progress(starts, f"tap: restart {restart + 1}/{cfg.restarts}"):
                    part = indices[start : start + cfg.batch_size]
                    clean = channels_last(data.images[part].to(dev).float() / 255)
                    target = (data.labels[part].to(dev) + 1) % data.num_classes
                    init = torch.randn(clean.shape, device=dev, generator=generator) * cfg.budget
                    delta = pgd(model, clean, target, init, budget=cfg.budget,
                                step_size=cfg.step_fraction * cfg.budget, steps=cfg.steps,
                                minimize=True, transform=augment)  # fmt: skip
                    with torch.no_grad():
                        logits = model(augment((clean + delta).clamp(0, 1)))
                        total += float(F.cross_entropy(logits, target, reduction="sum"))
                    deltas.append(delta.cpu())
                losses.append(total / len(indices))
                if losses[-1] < best_loss:
                    best, best_loss = torch.cat(deltas), losses[-1]
        config = {**cfg.model_dump(), "restart_losses": losses}
        return Perturbation(self.name, "additive", indices.cpu(), torch.arange(len(indices)), best,
                            len(data), cfg.budget, config=config)  # fmt: skip
