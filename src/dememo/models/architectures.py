"""The registered architectures."""

from __future__ import annotations

import torch
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


@register_model("airbench", "airbench94's widths 64/256/256 (GPU-sized); 1.9M params")
def _airbench(channels: int, num_classes: int, size: tuple[int, int]) -> nn.Module:
    return FastNet(channels, num_classes, (64, 256, 256))


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
