"""LSP: linearly separable synthetic perturbations (Yu et al., "Availability Attacks Create
Shortcuts", KDD 2022; official code ``dayu11/Availability-Attacks-Create-Shortcuts``,
``synthetic_perturbations/``).

Gradient-free and sample-wise, but drawn from class-conditional clusters: scikit-learn's
``make_classification`` draws one Gaussian cluster per class (centroids on hypercube vertices at
``class_sep``, random covariance) in ``d = C * ceil(H / patch_size) * ceil(W / patch_size)``
dimensions, all informative (``n_redundant=0, n_repeated=0, n_clusters_per_class=1, flip_y=0``;
48 features for CIFAR-10 at the official ``patch_size`` 8). Each vector becomes a (C, ceil(H/p),
ceil(W/p)) image, upsampled by nearest-neighbour repetition to constant p x p blocks and cropped to
H x W. The covered samples of class y receive the synthetic samples labelled y, in order.

Scaling, honestly: the reference scales every sample to l2 norm ``sqrt(C*H*W) * eps`` (eps 6/255,
so 1.30 on CIFAR) and applies **no** l_inf bound, so single pixels may move by more than 6/255. Here
``budget`` (default 6/255, the official ``--eps 6``) plays the role of that eps: every sample is
scaled to the same l2 norm, then clipped to ``budget_linf_cap`` in l_inf. The default cap 1.0 is the
pixel range, so by default nothing is clipped and the noise is the reference's. The Perturbation's
``budget`` is the largest |value| actually used; it is therefore *not* a 6/255 l_inf guarantee. A cap
below that largest value makes the norm of the clipped samples smaller than the reference's.

Other differences from the reference: ``make_classification`` is seeded (``random_state`` from
``seed``; the reference uses the global numpy state) and draws ``num_classes * n`` samples, with ``n``
the largest number of covered samples of one class, so unbalanced classes are served too; releases
round to the nearest uint8 level (never clipped to a whole number of levels, see Perturbation)
rather than truncate.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from sklearn.datasets import make_classification

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.protect.base import ProtectConfig, Protector, register_protector
from dememo.protect.perturbation import Perturbation


class LSPConfig(ProtectConfig):
    budget: float = 6 / 255  # eps of the l2 scaling sqrt(C*H*W) * budget (official --eps 6)
    patch_size: int = Field(8, ge=1)
    class_sep: float = Field(10.0, gt=0)
    budget_linf_cap: float = Field(1.0, gt=0, le=1)  # l_inf clip after scaling (1.0: none)


def feature_count(shape: tuple[int, int, int], patch_size: int) -> int:
    channels, height, width = shape
    return channels * math.ceil(height / patch_size) * math.ceil(width / patch_size)


def upsample(vectors: torch.Tensor, shape: tuple[int, int, int], patch_size: int) -> torch.Tensor:
    """(N, d) feature vectors -> (N, C, H, W) images of constant patch_size blocks."""
    channels, height, width = shape
    rows, cols = math.ceil(height / patch_size), math.ceil(width / patch_size)
    grid = vectors.reshape(len(vectors), channels, rows, cols)
    grid = grid.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return grid[:, :, :height, :width]


@register_protector
class LinearSeparablePerturbation(Protector):
    name = "lsp"
    description = "linearly separable noise from class-wise Gaussian clusters (Yu et al. 2022)"
    Config = LSPConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg = self.config
        shape = tuple(data.images.shape[1:])
        num_classes = data.num_classes
        features = feature_count(shape, cfg.patch_size)
        if num_classes > 2 ** min(features, 62):
            sizes = range(cfg.patch_size, 0, -1)
            fits = [p for p in sizes if num_classes <= 2 ** min(feature_count(shape, p), 62)]
            hint = f"; patch_size={fits[0]} fits" if fits else ""
            raise ConfigError(
                f"lsp: patch_size={cfg.patch_size} gives {features} features for images {shape}, but "
                f"make_classification needs 2**features >= {num_classes} classes{hint}"
            )
        indices = indices.cpu()
        labels = data.labels[indices]
        per_class = int(torch.bincount(labels, minlength=num_classes).max())
        vectors, synthetic = make_classification(
            n_samples=num_classes * per_class, n_features=features, n_informative=features,
            n_redundant=0, n_repeated=0, n_classes=num_classes, n_clusters_per_class=1,
            class_sep=cfg.class_sep, flip_y=0.0, random_state=cfg.seed % 2**32,
        )  # fmt: skip
        vectors, synthetic = torch.from_numpy(vectors), torch.from_numpy(synthetic)
        picked = torch.empty(len(indices), features, dtype=torch.float64)
        for cls in torch.unique(labels).tolist():
            slots = torch.nonzero(labels == cls).flatten()
            picked[slots] = vectors[synthetic == cls][: len(slots)]
        delta = upsample(picked, shape, cfg.patch_size)
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-30)
        target = math.sqrt(math.prod(shape)) * cfg.budget
        cap = cfg.budget_linf_cap
        delta = (delta * (target / norms)[:, None, None, None]).clamp(-cap, cap)
        values = delta.float()
        used = float(values.abs().max())
        if not 0 < used <= 1:
            raise ConfigError(f"lsp: the scaled noise has largest |value| {used}, outside (0, 1]")
        return Perturbation(
            self.name, "additive", indices, torch.arange(len(indices)), values, len(data), used,
            config={**cfg.model_dump(), "l2_norm": target, "linf_used": used},
            linf_bound=False,
        )  # fmt: skip
