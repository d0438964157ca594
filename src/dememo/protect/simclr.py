"""SimCLR pieces for TUE: batched SimCLR augmentation, the NT-Xent loss, an encoder
with a projection head, and the class-separability (CSD) term on noise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dememo.data.augment import random_flip
from dememo.models import build_model

# RGB <-> YIQ (NTSC); a hue shift is a rotation of the I/Q plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def random_resized_crop(images: torch.Tensor, generator: torch.Generator, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> torch.Tensor:  # fmt: skip
    """Per-image crops of random area and aspect ratio, resized back (bilinear)."""
    n, dev = len(images), images.device
    area = torch.empty(n, device=dev).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n, device=dev).uniform_(
        math.log(ratio[0]), math.log(ratio[1]), generator=generator
    )
    aspect = log_ratio.exp()
    width = (area * aspect).sqrt().clamp(max=1.0)
    height = (area / aspect).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (1 - width)
    cy = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (1 - height)
    zero = torch.zeros(n, device=dev)
    theta = torch.stack([torch.stack([width, zero, cx], 1), torch.stack([zero, height, cy], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(images: torch.Tensor, generator: torch.Generator, strength=(0.4, 0.4, 0.4, 0.1),
                 p: float = 0.8) -> torch.Tensor:  # fmt: skip
    """Brightness, contrast, saturation and hue jitter, each drawn per image, applied with prob. p."""
    n, dev = len(images), images.device

    def factor(amount: float) -> torch.Tensor:
        return torch.empty(n, 1, 1, 1, device=dev).uniform_(1 - amount, 1 + amount, generator=generator)

    out = images * factor(strength[0])
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factor(strength[1]) + mean
    if images.shape[1] == 3:
        gray = grayscale(out)
        out = (out - gray) * factor(strength[2]) + gray
        angle = (
            torch.empty(n, device=dev).uniform_(-strength[3], strength[3], generator=generator) * 2 * math.pi
        )
        yiq = torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(dev, images.dtype), out)
        cos, sin = angle.cos().view(n, 1, 1), angle.sin().view(n, 1, 1)
        i, q = yiq[:, 1] * cos - yiq[:, 2] * sin, yiq[:, 1] * sin + yiq[:, 2] * cos
        yiq = torch.stack([yiq[:, 0], i, q], 1)
        out = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YIQ).to(dev, images.dtype), yiq)
    apply = torch.rand(n, 1, 1, 1, device=dev, generator=generator) < p
    return torch.where(apply, out.clamp(0, 1), images)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True).expand_as(images)


def simclr_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR's CIFAR augmentation, batched and differentiable: resized crop, flip,
    colour jitter (p 0.8), grayscale (p 0.2)."""
    out = random_flip(random_resized_crop(images, generator), generator)
    out = color_jitter(out, generator)
    if images.shape[1] == 3:
        gray = torch.rand(len(out), 1, 1, 1, device=out.device, generator=generator) < 0.2
        out = torch.where(gray, grayscale(out), out)
    return out


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over 2B views: each view's positive is its pair, all other 2B-2 are negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, positives)


class ContrastiveEncoder(nn.Module):
    """A registered backbone whose classifier layer outputs ``hidden`` features, then
    BN-ReLU-Linear to ``feature_dim`` (SimCLR's projection head)."""

    def __init__(self, backbone: str, channels: int, size: tuple[int, int], mean, std,
                 hidden: int = 512, feature_dim: int = 128) -> None:  # fmt: skip
        super().__init__()
        self.backbone = build_model(backbone, channels, hidden, size, mean, std)
        self.head = nn.Sequential(nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, feature_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def class_separability(
    noise: torch.Tensor, labels: torch.Tensor, spread_gradient: bool = False
) -> torch.Tensor:
    """Davies-Bouldin-like CSD of the noise grouped by class (lower: more separable).

    mean over class pairs i != j of (s_i + s_j + 1e-5) / (d_ij + 1e-5), with s_c the
    mean distance of class c's noise to its mean and d_ij the distance of the class
    means. As in the official code (renjie3/TUE, ``get_linear_noise_csd_loss``), the
    spreads s_c are constants for the gradient, which flows through the class means
    only; ``spread_gradient=True`` lets it flow through s_c as well.
    """
    flat = noise.flatten(1)
    classes, inverse = torch.unique(labels, return_inverse=True)
    k = len(classes)
    if k < 2:
        return flat.sum() * 0
    onehot = F.one_hot(inverse, k).to(flat.dtype)
    counts = onehot.sum(0)
    means = onehot.T @ flat / counts[:, None]
    spread = (onehot.T @ (flat - means[inverse]).norm(dim=1)) / counts
    if not spread_gradient:
        spread = spread.detach()
    distance = torch.cdist(means, means)
    ratio = (spread[:, None] + spread[None, :] + 1e-5) / (distance + 1e-5)
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=flat.device)
    return ratio[off_diagonal].mean()
