"""Batched augmentation on device tensors (no per-sample Python in the hot loop)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class Augment(BaseModel):
    """Which augmentations to apply: the paper's Table 6 uses crop+flip (CIFAR-10)
    and crop+flip+rotation (CIFAR-100)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crop_padding: int = Field(0, ge=0, description="random crop after zero padding by this many px")
    flip: bool = Field(False, description="random horizontal flip with probability 1/2")
    rotation: float = Field(0.0, ge=0, le=180, description="random rotation in [-deg, deg]")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip or self.rotation > 0


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crops of the zero-padded batch back to the original size."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=images.device)
    rows = shifts[0, :, None] + torch.arange(h, device=images.device)
    cols = shifts[1, :, None] + torch.arange(w, device=images.device)
    batch = torch.arange(n, device=images.device)[:, None, None]
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def random_rotation(images: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle drawn from [-degrees, degrees] (bilinear, zero fill)."""
    n = len(images)
    angle = (torch.rand(n, generator=generator, device=images.device) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_batch(images: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Apply ``augment`` to a float batch (N, C, H, W)."""
    if augment.crop_padding:
        images = random_crop(images, augment.crop_padding, generator)
    if augment.flip:
        images = random_flip(images, generator)
    if augment.rotation:
        images = random_rotation(images, augment.rotation, generator)
    return images
