"""ImageSet: uint8 images (N, C, H, W), int64 labels and class names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import torch

from dememo.errors import DataError


@dataclass(frozen=True)
class ImageSet:
    """One split of an image dataset. Pixels stay uint8 at rest.

    ``images`` is (N, C, H, W) uint8, ``labels`` is (N,) int64 in
    ``[0, len(classes))``. Construction validates all of this and names the
    field that is wrong.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str = "data"

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8:
            raise DataError(f"{self.name}: images must be a uint8 tensor, got {describe_error(self.images)}")
        if self.images.dim() != 4:
            raise DataError(
                f"{self.name}: images must have shape (N, C, H, W), got {tuple(self.images.shape)}"
            )
        if not isinstance(self.labels, torch.Tensor) or self.labels.dtype != torch.int64:
            raise DataError(f"{self.name}: labels must be an int64 tensor, got {describe_error(self.labels)}")
        if self.labels.dim() != 1 or len(self.labels) != len(self.images):
            raise DataError(
                f"{self.name}: {len(self.images)} images but labels have shape {tuple(self.labels.shape)}"
            )
        if not self.classes:
            raise DataError(f"{self.name}: no class names")
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.labels):
            low, high = int(self.labels.min()), int(self.labels.max())
            if low < 0 or high >= len(self.classes):
                raise DataError(
                    f"{self.name}: labels must lie in [0, {len(self.classes) - 1}] "
                    f"({len(self.classes)} classes), found values in [{low}, {high}]"
                )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.images.shape[2], self.images.shape[3])

    def subset(self, indices: torch.Tensor | list[int], name: str | None = None) -> ImageSet:
        """The samples at ``indices`` (a new ImageSet; indices are validated)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise DataError(f"{self.name}: subset indices must lie in [0, {len(self) - 1}]")
        return ImageSet(self.images[index], self.labels[index], self.classes, name or self.name)

    def head(self, per_class: int | None, name: str | None = None) -> ImageSet:
        """The first ``per_class`` samples of every class (a deterministic, balanced subset);
        the whole set when ``per_class`` is None."""
        if per_class is None:
            return self
        picks = [torch.nonzero(self.labels == c).flatten()[:per_class] for c in range(self.num_classes)]
        index = torch.sort(torch.cat(picks)).values
        return self.subset(index, name)

    @cached_property
    def fingerprint(self) -> str:
        """A short content hash of the decoded tensors and class names (not the set's name).

        Computed once per ImageSet; its tensors are never modified in place (derive a new set).
        """
        digest = hashlib.sha256(json.dumps([list(self.classes), list(self.images.shape)]).encode())
        for tensor in (self.images, self.labels):
            digest.update(tensor.detach().cpu().contiguous().numpy())
        return digest.hexdigest()[:16]

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of pixels scaled to [0, 1]."""
        pixels = self.images.transpose(0, 1).reshape(self.channels, -1).double() / 255.0
        return tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).tolist())


@dataclass(frozen=True)
class Dataset:
    """A train and a test split that share classes, channels and image size."""

    name: str
    train: ImageSet
    test: ImageSet

    def __post_init__(self) -> None:
        if self.train.classes != self.test.classes:
            raise DataError(f"{self.name}: train and test class names differ")
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {tuple(self.train.images.shape[1:])} but test "
                f"images are {tuple(self.test.images.shape[1:])}"
            )

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of both splits: what every artifact made from this data is keyed on."""
        both = f"{self.train.fingerprint}|{self.test.fingerprint}"
        return hashlib.sha256(both.encode()).hexdigest()[:16]

    def split(self, name: str) -> ImageSet:
        if name not in ("train", "test"):
            raise DataError(f"unknown split {name!r}; valid: test, train")
        return self.train if name == "train" else self.test


def describe_error(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor"
    return type(value).__name__
