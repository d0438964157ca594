"""CUDA: convolution-based unlearnable datasets (Sadasivan et al., "CUDA: Convolution-based
Unlearnable Datasets", CVPR 2023).

Implemented from the paper's description only: the official code is under a licence that forbids
copying it, and it was not read. Gradient-free and class-wise, but not norm-bounded: every class gets
its own random blur, generated from a private key (``seed``), and every covered image of the class is
blurred with it. Per class and per channel a ``kernel_size`` x ``kernel_size`` filter has entries
drawn from U(0, ``blur_parameter``), the centre entry set to 1.0, and is normalised to sum 1
(0.3 and 3 x 3 are the CIFAR-10/100 settings; a larger ``blur_parameter`` blurs more). Each image is
convolved channel-wise with its class's filters, zero "same" padding, and clamped to [0, 1].

These filter details (uniform range, centre 1.0, sum-1 normalisation, per-channel filters, zero
padding) follow our reading of the paper and were NOT checked against the reference code.

The blur is expressed as an additive Perturbation with one row per sample, ``blurred - clean``,
under ``budget`` 1.0 (the method has no norm budget; the ``budget`` option is unused). The
reference's ``mix`` (share of the training set poisoned) is the common ``fraction`` option.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from dememo.data.imageset import ImageSet
from dememo.protect.base import ProtectConfig, Protector, register_protector
from dememo.protect.perturbation import Perturbation

_CHUNK = 4096  # images blurred per pass


class CUDAConfig(ProtectConfig):
    blur_parameter: float = Field(0.3, ge=0)
    kernel_size: int = Field(3, ge=1)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd for same padding, got {value}")
        return value


def make_filters(
    num_classes: int, channels: int, kernel_size: int, blur_parameter: float, generator: torch.Generator
) -> torch.Tensor:
    """(K, C, k, k) float64 filters: U(0, blur_parameter) entries, centre 1, each summing to 1."""
    shape = (num_classes, channels, kernel_size, kernel_size)
    filters = torch.rand(shape, generator=generator, dtype=torch.float64) * blur_parameter
    filters[..., kernel_size // 2, kernel_size // 2] = 1.0
    return filters / filters.sum(dim=(-2, -1), keepdim=True)


def blur(images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Channel-wise convolution of (N, C, H, W) images in [0, 1] with (C, k, k) filters, clamped."""
    channels, size, _ = filters.shape
    weight = filters.to(images.dtype).unsqueeze(1)  # (C, 1, k, k), one filter per channel
    return F.conv2d(images, weight, padding=size // 2, groups=channels).clamp(0, 1)


@register_protector
class ConvolutionUnlearnable(Protector):
    name = "cuda"
    description = "convolution-based unlearnable data, class-wise random blurs (Sadasivan et al. 2023)"
    Config = CUDAConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg = self.config
        generator = torch.Generator().manual_seed(cfg.seed)
        filters = make_filters(
            data.num_classes, data.channels, cfg.kernel_size, cfg.blur_parameter, generator
        )
        indices = indices.cpu()
        labels = data.labels[indices]
        values = torch.empty(len(indices), *data.images.shape[1:])
        for cls in torch.unique(labels).tolist():
            slots = torch.nonzero(labels == cls).flatten()
            for start in range(0, len(slots), _CHUNK):
                part = slots[start : start + _CHUNK]
                clean = data.images[indices[part]].float() / 255
                values[part] = blur(clean, filters[cls]) - clean
        return Perturbation(
            self.name, "additive", indices, torch.arange(len(indices)), values, len(data), 1.0,
            config=cfg.model_dump(),
        )  # fmt: skip
