"""CUDA: convolution-based unlearnable datasets (Sadasivan et al., "CUDA: Convolution-based
Unlearnable Datasets", CVPR 2023).

Gradient-free and class-wise, but not norm-bounded: every class gets its own random blur, generated
from a private key (``seed``), and every covered image of the class is blurred with it. The
behaviour follows the official code (vinusankars/Convolution-based-Unlearnability,
``final_filter_unlearnable.py``), read to check it; this code is written independently:
- per class, one ``kernel_size`` x ``kernel_size`` kernel with entries drawn from
  U(0, ``blur_parameter``) and one entry, at a random position drawn per class, set to 1.0
  (0.3 and 3 x 3 are the CIFAR-10/100 settings; a larger ``blur_parameter`` blurs more);
- the same kernel serves every channel (a depthwise convolution, zero "same" padding, no bias);
- the kernel is not normalised; instead each blurred image is divided by its own maximum over all
  channels and pixels, then clamped to [0, 1] (an all-black image stays black).

The blur is expressed as an additive Perturbation with one row per sample, ``blurred - clean``,
under ``budget`` 1.0 (the method has no norm budget; the ``budget`` option is unused). The
reference's ``mix`` (share of the training set poisoned) is the common ``fraction`` option; the
reference truncates to uint8 where releases here round to the nearest level.
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


def make_filters(num_classes: int, kernel_size: int, blur_parameter: float,
                 generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """(K, k, k) float64 kernels: U(0, blur_parameter) entries, one entry per class set to 1.0 at a
    random position, not normalised."""
    filters = torch.rand(num_classes, kernel_size, kernel_size, generator=generator, dtype=torch.float64)
    filters *= blur_parameter
    spots = torch.randint(kernel_size * kernel_size, (num_classes,), generator=generator)
    filters.view(num_classes, -1)[torch.arange(num_classes), spots] = 1.0
    return filters


def blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images in [0, 1] convolved channel-wise with one (k, k) kernel, each result
    divided by its own maximum, clamped to [0, 1]."""
    channels, size = images.shape[1], kernel.shape[-1]
    weight = kernel.to(images.dtype).expand(channels, 1, size, size)  # the same kernel for every channel
    out = F.conv2d(images, weight, padding=size // 2, groups=channels)
    peak = out.flatten(1).amax(1).view(-1, 1, 1, 1)
    return torch.where(peak > 0, out / peak.clamp_min(1e-12), out).clamp(0, 1)


@register_protector
class ConvolutionUnlearnable(Protector):
    name = "cuda"
    description = "convolution-based unlearnable data, class-wise random blurs (Sadasivan et al. 2023)"
    Config = CUDAConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg = self.config
        generator = torch.Generator().manual_seed(cfg.seed)
        filters = make_filters(data.num_classes, cfg.kernel_size, cfg.blur_parameter, generator)
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
