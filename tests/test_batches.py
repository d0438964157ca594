"""Device-resident batches and batched augmentation."""

from __future__ import annotations

import torch

from dememo.data.augment import Augment, augment_batch, random_crop, random_flip, random_rotation
from dememo.data.batches import DeviceLoader


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_loader_visits_each_sample_once_per_epoch(digits):
    loader = DeviceLoader(digits.train, 100, seed=1)
    seen = torch.cat([batch.index for batch in loader])
    assert sorted(seen.tolist()) == list(range(len(digits.train)))
    assert len(loader) == (len(digits.train) + 99) // 100


def test_loader_subset_by_index_without_copy(digits):
    subset = torch.tensor([5, 7, 11, 13])
    loader = DeviceLoader(digits.train, 3, indices=subset, shuffle=False)
    batches = list(loader)
    assert torch.equal(torch.cat([b.index for b in batches]), subset)
    assert torch.equal(batches[0].labels, digits.train.labels[:14][[5, 7, 11]])
    assert loader.images.data_ptr() == digits.train.images.data_ptr()  # CPU: shared storage


def test_loader_scales_to_unit_interval(digits):
    batch = next(iter(DeviceLoader(digits.train, 64, shuffle=False)))
    assert batch.images.dtype == torch.float32
    assert torch.allclose(batch.images * 255, digits.train.images[:64].float())


def test_same_seed_same_batches(digits):
    aug = Augment(crop_padding=2, flip=True, rotation=10)
    first = [b.images for b in DeviceLoader(digits.train, 128, augment=aug, seed=3)]
    again = [b.images for b in DeviceLoader(digits.train, 128, augment=aug, seed=3)]
    other = [b.images for b in DeviceLoader(digits.train, 128, augment=aug, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


def test_crop_is_a_shift_of_the_padded_image():
    images = torch.rand(64, 3, 8, 8)
    out = random_crop(images, 2, _gen())
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(64):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert not torch.equal(out, images)  # some sample moved


def test_flip_mirrors_about_half_the_batch():
    images = torch.rand(1000, 1, 4, 4)
    out = random_flip(images, _gen())
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, images, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, images, strict=True)])
    assert bool((flipped | kept).all())
    assert 400 < int(flipped.sum()) < 600


def test_rotation_zero_degrees_is_identity_and_nonzero_moves():
    images = torch.rand(8, 3, 16, 16)
    assert torch.allclose(random_rotation(images, 0.0, _gen()), images, atol=1e-5)
    assert not torch.allclose(random_rotation(images, 30.0, _gen()), images, atol=1e-2)


def test_no_augment_is_identity():
    images = torch.rand(4, 3, 8, 8)
    assert torch.equal(augment_batch(images, Augment(), _gen()), images)
