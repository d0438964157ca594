"""Training recipes (the paper's Table 6 plus fast ones) and the training loop."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_serializer
from torch import nn

from dememo.data.augment import Augment
from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import TrainingError
from dememo.models import fit_from_data, flip_evaluated
from dememo.progress import make_progress
from dememo.registry import Registry
from dememo.runtime import MEMORY_FORMAT, Precision, autocast, channels_last, seed_everything


class Recipe(BaseModel):
    """Everything that decides how a model is trained, hashable into artifact names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    epochs: int = Field(ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: str = Field("sgd", pattern="^(sgd|adamw)$")
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    schedule: str = Field("cosine", pattern="^(cosine|onecycle|constant)$")
    warmup_fraction: float = Field(0.0, ge=0, lt=1, description="onecycle: share of steps rising")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: Augment = Augment()
    source: str = ""
    norm_bias_lr_scale: float = Field(
        1.0, gt=0, description="BatchNorm shifts train at lr x this and weight decay / this (airbench: 64)"
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Fields added after the first artifacts (issue 20) are left out at their default, so the
        recipes of before, and the artifact keys that hash them, stay what they were."""
        data = handler(self)
        if self.norm_bias_lr_scale == 1.0:
            data.pop("norm_bias_lr_scale")
        return data


RECIPES: Registry[Recipe] = Registry("recipe")
FIT_IMAGES = 5000  # images a data-dependent initialization is fitted on (airbench94's whitening)
PAPER = "SoK paper, Appendix A, Table 6"
CIFAR_CROP_FLIP = Augment(crop_padding=4, flip=True)
CIFAR_CROP_FLIP_ROTATE = Augment(crop_padding=4, flip=True, rotation=15)

for _recipe in (
    Recipe(name="paper-sgd-cifar10", epochs=60, lr=0.1, weight_decay=5e-4,
           augment=CIFAR_CROP_FLIP, source=f"{PAPER}: ResNet-18/DenseNet-121 on CIFAR-10"),
    Recipe(name="paper-sgd-cifar100", epochs=100, lr=0.1, weight_decay=5e-5,
           augment=CIFAR_CROP_FLIP_ROTATE, source=f"{PAPER}: ResNet-18/DenseNet-121 on CIFAR-100"),
    Recipe(name="paper-adamw-cifar10", epochs=60, optimizer="adamw", lr=3e-4, weight_decay=0.05,
           augment=CIFAR_CROP_FLIP, source=f"{PAPER}: ViT-Tiny on CIFAR-10"),
    Recipe(name="paper-adamw-cifar100", epochs=100, optimizer="adamw", lr=3e-4, weight_decay=0.05,
           augment=CIFAR_CROP_FLIP_ROTATE, source=f"{PAPER}: ViT-Tiny on CIFAR-100"),
    Recipe(name="fast", epochs=20, batch_size=256, lr=0.2, nesterov=True, weight_decay=5e-4,
           schedule="onecycle", warmup_fraction=0.2, label_smoothing=0.2, augment=CIFAR_CROP_FLIP,
           source="dememo: short one-cycle SGD for fastnet/airbench with crop+flip"),
    Recipe(name="airbench", epochs=10, batch_size=1024, lr=1.5, momentum=0.85, nesterov=True,
           weight_decay=1.33e-3, schedule="onecycle", warmup_fraction=0.2, label_smoothing=0.2,
           augment=Augment(crop_padding=2, flip=True), norm_bias_lr_scale=64.0,
           source="airbench94 (Jordan 2024, github.com/KellerJordan/airbench) for the 'airbench' model: "
           "batch 1024, Nesterov momentum 0.85, lr 11.5 per 1,024 summed losses (1.5 on the mean "
           "loss), decoupled weight decay 0.0153 per 1,024 (2.0e-3 a step: 1.33e-3 x lr), "
           "BatchNorm shifts at 64x lr, label smoothing 0.2, flip + 2 px translate, a triangular "
           "schedule peaking at 20%; deviations: 10 epochs (not 9.9), the rise starts at 0.1 (not "
           "0.2), zero (not reflect) padding, random (not alternating) flips, no lookahead, the "
           "whitening bias trained throughout (not 3 epochs)"),
    Recipe(name="fast-noaug", epochs=20, batch_size=256, lr=0.2, nesterov=True, weight_decay=5e-4,
           schedule="onecycle", warmup_fraction=0.2, label_smoothing=0.2,
           source="dememo: 'fast' without augmentation"),
    Recipe(name="tap-surrogate", epochs=40, lr=0.1, nesterov=True, weight_decay=5e-4,
           augment=CIFAR_CROP_FLIP, source="Fowl et al. 2021 official code: TAP's clean surrogate "
           "(40 epochs, Nesterov SGD; their step decay at epochs 14/24/35 is replaced by cosine)"),
    Recipe(name="quick", epochs=30, batch_size=64, lr=0.05, nesterov=True, weight_decay=5e-4,
           schedule="onecycle", warmup_fraction=0.2,
           source="dememo: small nets on tiny data (tests, digits)"),
):  # fmt: skip
    RECIPES.register(_recipe.name)(_recipe)


def get_recipe(name: str, **overrides: object) -> Recipe:
    """A registered recipe, optionally with fields replaced (validated)."""
    recipe = RECIPES.get(name)
    if not overrides:
        return recipe
    return Recipe.model_validate({**recipe.model_dump(), **overrides})


@dataclass
class TrainResult:
    epochs: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch


def parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """Trainable parameters with their base lr and weight decay: BatchNorm shifts apart when
    ``norm_bias_lr_scale`` is not 1 (the decay a step, lr x weight decay, stays the same)."""
    norms = [m.bias for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    scaled = {id(p) for p in norms if p is not None} if recipe.norm_bias_lr_scale != 1 else set()
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [([p for p in trainable if id(p) not in scaled], 1.0),
              ([p for p in trainable if id(p) in scaled], recipe.norm_bias_lr_scale)]  # fmt: skip
    return [{"params": params, "lr": recipe.lr * scale, "base_lr": recipe.lr * scale,
             "weight_decay": recipe.weight_decay / scale} for params, scale in groups if params]  # fmt: skip


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    groups = parameter_groups(model, recipe)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)  # fmt: skip


def set_lr(optimizer: torch.optim.Optimizer, recipe: Recipe, step: int, total: int) -> None:
    """Every group's learning rate at ``step`` of ``total``: its base rate x the schedule."""
    factor = lr_factor(recipe, step, total)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def lr_factor(recipe: Recipe, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total``."""
    progress = step / max(total, 1)
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if recipe.schedule == "onecycle":
        rise = recipe.warmup_fraction
        if progress < rise:
            return 0.1 + 0.9 * progress / rise
        return max(0.0, (1 - progress) / (1 - rise))
    return 1.0


def train(
    model: nn.Module,
    data: ImageSet,
    recipe: Recipe,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: Precision = "auto",
    indices: torch.Tensor | None = None,
    description: str = "training",
) -> TrainResult:
    """Train ``model`` in place on ``data`` (or its ``indices``) following ``recipe``.

    A layer with a data-dependent initialization (airbench's whitening) is fitted first, on up
    to 5,000 of the training images, unaugmented, if it was not fitted before.
    Raises TrainingError, leaving no checkpoint behind, if the loss turns NaN/inf.
    """
    device = torch.device(device)
    seed_everything(seed)
    model.to(device=device, memory_format=MEMORY_FORMAT).train()
    loader = DeviceLoader(data, recipe.batch_size, device, indices=indices, augment=recipe.augment, seed=seed)
    first = loader.indices[:FIT_IMAGES]
    fit_from_data(model, channels_last(loader.images[first].float().div_(255)))
    optimizer = make_optimizer(model, recipe)
    total = recipe.epochs * len(loader)
    result, step, started = TrainResult(recipe.epochs, 0, 0.0), 0, time.perf_counter()
    with make_progress() as bar:
        task = bar.add_task(description, total=total, status="")
        for epoch in range(recipe.epochs):
            loss_sum = torch.zeros((), device=device)
            for batch in loader:
                set_lr(optimizer, recipe, step, total)
                with autocast(device, precision):
                    logits = model(channels_last(batch.images))
                    loss = F.cross_entropy(
                        logits.float(), batch.labels, label_smoothing=recipe.label_smoothing
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                step += 1
                bar.advance(task)
            mean_loss = float(loss_sum) / len(loader)
            if not math.isfinite(mean_loss):
                raise TrainingError(
                    f"{description}: loss became {mean_loss} in epoch {epoch + 1} "
                    f"(lr {recipe.lr}); training stopped, no checkpoint written"
                )
            result.losses.append(mean_loss)
            bar.update(task, status=f"epoch {epoch + 1}/{recipe.epochs} loss {mean_loss:.3f}")
    result.steps, result.seconds = step, time.perf_counter() - started
    return result


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """Float32 logits of ``model`` on ``data`` (in order), in eval mode.

    Always computed in fp32, whatever precision the model was trained in: every accuracy,
    signal and metric that a table reports comes from here, so one model has one accuracy
    on every machine (bf16 autocast moved accuracies by ~1 point on AVX-512 BF16 CPUs).
    A model evaluated with a test-time flip (airbench) gets the mean logits of each image and
    its mirror, also in fp32.
    """
    device = torch.device(device)
    was_training = model.training
    model.to(device=device, memory_format=MEMORY_FORMAT).eval()
    loader = DeviceLoader(data, batch_size, device, indices=indices, shuffle=False)
    flip, outputs = flip_evaluated(model), []
    for batch in loader:
        images = channels_last(batch.images)
        logits = model(images).float()
        outputs.append((logits + model(images.flip(3)).float()) / 2 if flip else logits)
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, data.num_classes)


def accuracy(model: nn.Module, data: ImageSet, **kwargs) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (fraction in [0, 1], fp32: ``predict_logits``)."""
    indices = kwargs.get("indices")
    labels = data.labels if indices is None else data.labels[torch.as_tensor(indices)]
    if len(labels) == 0:
        return float("nan")
    logits = predict_logits(model, data, **kwargs)
    return float((logits.argmax(1).cpu() == labels).float().mean())
