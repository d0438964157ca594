"""Perturbation: what a protector produces, and how it is applied and released.

A perturbation covers the samples at ``indices`` of one dataset split. Each
covered sample ``indices[i]`` uses row ``groups[i]`` of ``values``: sample-wise
methods have one row per sample, class-wise methods one row per class.

- ``mode="additive"``: ``values`` are deltas in pixel units ([0, 1] scale)
  bounded by ``budget`` in l_inf. Applying adds them to the image and clamps the
  *sum* to [0, 1].
- ``mode="replace"``: ``values`` are pixel values in [0, 1] that replace the
  image wherever ``mask`` is true (OPS).

Releases are uint8, as real released images are: ``apply`` rounds each additive
delta to the nearest level. When ``budget`` is an l_inf guarantee (``linf_bound``,
the PGD methods) the quantized delta is also kept within it, which can cost up to
one level where the budget is not a whole number of levels. LSP and AR are l2
methods whose ``budget`` only records the largest |value| used
(``linf_bound=False``): their releases are rounded without that clip, so every
released pixel is within half a level of ``clean + delta`` (before the [0, 255]
clamp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError, DataError
from dememo.store import Artifact

Mode = Literal["additive", "replace"]


@dataclass(frozen=True)
class Perturbation:
    method: str
    mode: Mode
    indices: torch.Tensor  # (M,) int64 sample positions in the split
    groups: torch.Tensor  # (M,) int64 rows of ``values``
    values: torch.Tensor  # (G, C, H, W) float32
    num_samples: int  # length of the split it was made for
    budget: float | None = None  # l_inf bound of additive values
    mask: torch.Tensor | None = None  # (G, 1, H, W) bool, for mode="replace"
    config: dict[str, Any] = field(default_factory=dict)
    linf_bound: bool = True  # False: budget is the largest |value|, not a bound to keep after rounding

    def __post_init__(self) -> None:
        if self.mode not in ("additive", "replace"):
            raise ConfigError(f"perturbation mode must be 'additive' or 'replace', got {self.mode!r}")
        if self.indices.shape != self.groups.shape or self.indices.dim() != 1:
            raise DataError("perturbation indices and groups must be 1-d and of equal length")
        if self.values.dim() != 4:
            raise DataError(f"perturbation values must be (G, C, H, W), got {tuple(self.values.shape)}")
        if len(self.indices) and (int(self.groups.min()) < 0 or int(self.groups.max()) >= len(self.values)):
            raise DataError(f"perturbation groups must lie in [0, {len(self.values) - 1}]")
        if len(self.indices) and int(self.indices.max()) >= self.num_samples:
            raise DataError("perturbation indices exceed the number of samples it was made for")
        if self.mode == "additive":
            if self.budget is None or not 0 < self.budget <= 1:
                raise ConfigError(f"additive perturbation needs a budget in (0, 1], got {self.budget}")
            if self.values.numel() and float(self.values.abs().max()) > self.budget + 1e-6:
                raise DataError(f"perturbation values exceed their budget {self.budget:.5f}")
        elif self.mask is None or self.mask.shape != (len(self.values), 1, *self.values.shape[2:]):
            raise DataError("replace perturbation needs a mask of shape (G, 1, H, W)")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape[1:])

    def check_fits(self, data: ImageSet) -> None:
        """Raise DataError unless ``data`` is the split this perturbation was made for."""
        if len(data) != self.num_samples:
            raise DataError(
                f"{self.method} perturbation was made for {self.num_samples} samples, "
                f"{data.name} has {len(data)}"
            )
        if tuple(data.images.shape[1:]) != self.shape:
            raise DataError(
                f"{self.method} perturbation has image shape {self.shape}, "
                f"{data.name} has {tuple(data.images.shape[1:])}"
            )

    def quantized_rows(self) -> torch.Tensor:
        """``values`` on the uint8 grid: integer deltas within budget, or uint8 pixels."""
        if self.mode == "replace":
            return torch.round(self.values.clamp(0, 1) * 255)
        levels = torch.round(self.values * 255)
        if not self.linf_bound:
            return levels
        limit = math.floor(self.budget * 255 + 1e-6)
        return levels.clamp(-limit, limit)

    def apply(self, data: ImageSet, name: str | None = None) -> ImageSet:
        """The protected release: covered samples perturbed, quantized to uint8."""
        self.check_fits(data)
        images = data.images.clone()
        rows = self.quantized_rows()
        for start in range(0, len(self.indices), 4096):  # bounded memory on large sets
            index = self.indices[start : start + 4096]
            group = self.groups[start : start + 4096]
            clean = images[index].float()
            if self.mode == "additive":
                out = (clean + rows[group]).clamp(0, 255)
            else:
                out = torch.where(self.mask[group], rows[group], clean)
            images[index] = out.to(torch.uint8)
        return ImageSet(images, data.labels, data.classes, name or f"{data.name}+{self.method}")

    # --- storage ------------------------------------------------------------------------

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"indices": self.indices, "groups": self.groups, "values": self.values.float()}
        if self.mask is not None:
            out["mask"] = self.mask
        return out

    def metadata(self) -> dict[str, Any]:
        return {"method": self.method, "mode": self.mode, "num_samples": self.num_samples,
                "budget": self.budget, "linf_bound": self.linf_bound, "config": self.config}  # fmt: skip

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> Perturbation:
        meta = artifact.manifest["metrics"]["perturbation"]
        t = artifact.tensors
        return cls(meta["method"], meta["mode"], t["indices"], t["groups"], t["values"],
                   meta["num_samples"], meta["budget"], t.get("mask"), meta["config"],
                   meta.get("linf_bound", True))  # fmt: skip
