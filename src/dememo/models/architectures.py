"""The registered architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import densenet121, resnet18

from dememo.models.registry import register_model


@register_model("resnet18", "ResNet-18 with a CIFAR stem (3x3 conv, no max-pool); 11.2M params")
def _resnet18(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    net = resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


@register_model("densenet121", "DenseNet-121 (growth 32) with a CIFAR stem; 7.0M params")
def _densenet121(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    net = densenet121(num_classes=num_classes)
    net.features.conv0 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.features.pool0 = nn.Identity()
    return net


def vit_patch_size(size: tuple[int, int]) -> int:
    """The largest patch size <= min(H, W) / 8 that divides both sides (4 for 32x32)."""
    limit = max(1, min(size) // 8)
    return next(p for p in range(limit, 0, -1) if size[0] % p == 0 and size[1] % p == 0)


@register_model("vit_tiny", "ViT-Tiny (dim 192, depth 12, 3 heads) with patch 4 for 32x32; 5.4M")
def _vit_tiny(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=size,
        patch_size=vit_patch_size(size),
        in_chans=channels,
        num_classes=num_classes,
        embed_dim=192,
        depth=12,
        num_heads=3,
    )


class ConvBlock(nn.Sequential):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU (airbench's block)."""

    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__(
            nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.BatchNorm2d(width_out),
            nn.GELU(),
            nn.Conv2d(width_out, width_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(width_out),
            nn.GELU(),
        )


class FastNet(nn.Module):
    """A small, fast network in the style of airbench94: three pooled conv blocks."""

    def __init__(self, channels: int, num_classes: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        stem = widths[0] // 2
        self.stem = nn.Sequential(
            nn.Conv2d(channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.GELU()
        )
        blocks, width_in = [], stem
        for width in widths:
            blocks.append(ConvBlock(width_in, width))
            width_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width_in, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x))
        return self.head(torch.amax(features, dim=(2, 3)))


@register_model("fastnet", "airbench-style 3-block CNN, widths 16/32/64 (CPU-sized); 0.07M params")
def _fastnet(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return FastNet(channels, num_classes, (16, 32, 64))


class Whitening(nn.Module):
    """airbench94's first layer: a 2x2 convolution whose filters are the eigenvectors of the
    (uncentred) covariance of 2x2 patches of the training images, each scaled by
    1/sqrt(eigenvalue + eps) and paired with its negative. The filters are fixed (buffers),
    fitted once by ``fit``; until then they hold a convolution's default random filters.
    The bias is trained."""

    def __init__(self, channels: int, patch: int = 2, eps: float = 5e-4) -> None:
        super().__init__()
        self.patch, self.eps = patch, eps
        self.register_buffer("weight", nn.Conv2d(channels, 2 * channels * patch**2, patch).weight.detach())
        self.bias = nn.Parameter(torch.zeros(2 * channels * patch**2))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, inputs: torch.Tensor) -> None:
        """Set the filters from ``inputs`` (N, C, H, W), as this layer receives them."""
        c, p = inputs.shape[1], self.patch
        patches = (
            inputs.float().unfold(2, p, 1).unfold(3, p, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * p * p)
        )
        values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (vectors.T / torch.sqrt(values.clamp_min(0) + self.eps)[:, None]).flip(0)
        self.weight.copy_(torch.cat([filters, -filters]).view_as(self.weight))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


class Airbench(nn.Module):
    """airbench94's network (Jordan 2024): the whitening layer, three conv blocks of widths
    64/256/256 whose BatchNorms have fixed scale 1 (only the shift is trained), momentum 0.4 and
    eps 1e-12, convolutions whose first in-channels filters start as identities, a global
    max-pool, a bias-free linear head and logits scaled by 1/9. Evaluation (``predict_logits``,
    the Monte-Carlo metric) averages the logits of each image and its mirror."""

    test_time_flip = True

    def __init__(
        self, channels: int, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256)
    ) -> None:
        super().__init__()
        self.whiten = Whitening(channels)
        blocks, width_in = [], self.whiten.bias.numel()
        for width in widths:
            blocks.append(ConvBlock(width_in, width))
            width_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width_in, num_classes, bias=False)
        for layer in self.blocks.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum, layer.eps = 0.4, 1e-12
                layer.weight.requires_grad_(False)
            elif isinstance(layer, nn.Conv2d):  # airbench94: identity filters for the first inputs
                nn.init.dirac_(layer.weight.data[: layer.in_channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(F.gelu(self.whiten(x)))
        return self.head(torch.amax(features, dim=(2, 3))) / 9


@register_model("airbench", "airbench94's network: whitening 2x2 conv, widths 64/256/256, flip TTA; 1.97M")
def _airbench(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return Airbench(channels, num_classes)


@register_model("tinycnn", "two conv layers and a linear head, for tests; about 5K params")
def _tinycnn(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


@register_model("mlp", "one hidden layer of 256 units, for tests")
def _mlp(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * size[0] * size[1], 256),
        nn.ReLU(),
        nn.Linear(256, num_classes),
    )
