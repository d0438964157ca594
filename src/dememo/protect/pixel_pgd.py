"""Sign-gradient steps on pixel-space perturbations, shared by the PGD-based methods."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def project_linf(delta: torch.Tensor, images: torch.Tensor, budget: float) -> torch.Tensor:
    """Clip ``delta`` to the l_inf ball and so that ``images + delta`` stays in [0, 1]."""
    delta = delta.clamp(-budget, budget)
    return (images + delta).clamp(0, 1) - images


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    delta: torch.Tensor,
    *,
    budget: float,
    step_size: float,
    steps: int,
    minimize: bool,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run ``steps`` signed-gradient steps on ``delta`` and return it (detached).

    ``minimize=True`` lowers the loss on ``targets`` (error-minimizing, targeted);
    ``False`` raises it. ``transform`` (e.g. differentiable augmentation) is applied
    to ``images + delta`` before the model. Only the input gradient is computed:
    callers should have the model's parameters frozen.
    """
    loss_fn = loss_fn or (lambda m, x, y: F.cross_entropy(m(x), y))
    sign = -1.0 if minimize else 1.0
    delta = project_linf(delta.detach(), images, budget)
    for _ in range(steps):
        delta.requires_grad_(True)
        inputs = (images + delta).clamp(0, 1)
        if transform is not None:
            inputs = transform(inputs)
        (grad,) = torch.autograd.grad(loss_fn(model, inputs, targets), delta)
        delta = project_linf(delta.detach() + sign * step_size * grad.sign(), images, budget)
    return delta.detach()


class frozen:  # noqa: N801  (used as a context manager)
    """Context manager: parameters stop requiring gradients, and the model is in eval mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.flags = [p.requires_grad for p in self.model.parameters()]
        self.training = self.model.training
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self.model.parameters(), self.flags, strict=True):
            p.requires_grad_(flag)
        self.model.train(self.training)
