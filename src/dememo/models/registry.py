"""The model registry and the normalizing wrapper every model gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dememo.errors import ConfigError
from dememo.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[int, int, tuple[int, int]], nn.Module]  # (channels, classes, (H, W))


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, description: str):
    def add(build: Callable[[int, int, tuple[int, int]], nn.Module]):
        MODELS.register(name)(ModelSpec(name, description, build))
        return build

    return add


class Normalize(nn.Module):
    """(x - mean) / std per channel, with mean and std kept as buffers."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fit_from_data(model: nn.Module, images: torch.Tensor) -> None:
    """Fit every layer of ``model`` that declares a data-dependent initialization (a ``fit``
    method and a boolean ``fitted`` buffer, e.g. airbench's whitening) and is not fitted yet,
    on ``images`` (float, [0, 1]) as that layer receives them. Other models are left as they are."""
    layers = [m for m in model.modules() if hasattr(m, "fit") and not bool(getattr(m, "fitted", True))]
    if not layers:
        return
    hooks = [layer.register_forward_pre_hook(lambda layer, args: layer.fit(args[0])) for layer in layers]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(images)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()


def flip_evaluated(model: nn.Module) -> bool:
    """Whether ``model`` is evaluated on each image and its mirror (airbench94's evaluation)."""
    return any(getattr(m, "test_time_flip", False) for m in model.modules())


def build_model(
    name: str,
    channels: int,
    num_classes: int,
    image_size: tuple[int, int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Sequential:
    """Build a registered model as ``Sequential(Normalize, network)``."""
    spec = MODELS.get(name)
    mean = tuple(mean) if mean is not None else (0.5,) * channels
    std = tuple(std) if std is not None else (0.5,) * channels
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(f"mean/std need {channels} values (one per channel)")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    return nn.Sequential(Normalize(mean, std), spec.build(channels, num_classes, tuple(image_size)))
