"""Device-resident batches: the whole split lives on the device as uint8."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch

from dememo.data.augment import Augment, augment_batch
from dememo.data.imageset import ImageSet
from dememo.errors import DataError


class Batch(NamedTuple):
    images: torch.Tensor  # float in [0, 1], (B, C, H, W)
    labels: torch.Tensor  # int64, (B,)
    index: torch.Tensor  # positions in the ImageSet, (B,)


class DeviceLoader:
    """Shuffled, augmented batches drawn from an ImageSet kept on ``device``.

    ``indices`` restricts it to a subset without copying the images. Shuffling
    and augmentation use one generator on the device, seeded by ``seed``, so a
    seed gives the same batches every run.
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        indices: torch.Tensor | None = None,
        shuffle: bool = True,
        augment: Augment | None = None,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        if indices is None:
            indices = torch.arange(len(data))
        indices = torch.as_tensor(indices, dtype=torch.int64)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= len(data)):
            raise DataError(f"{data.name}: loader indices must lie in [0, {len(data) - 1}]")
        self.indices = indices.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment or Augment()
        self.drop_last = drop_last
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        full, rest = divmod(len(self.indices), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[Batch]:
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(len(order), generator=self.generator, device=self.device)]
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            images = self.images[index].float().div_(255.0)
            if self.augment.active:
                images = augment_batch(images, self.augment, self.generator)
            yield Batch(images, self.labels[index], index)
