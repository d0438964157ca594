"""Gradient-free protectors: OPS, LSP, AR and CUDA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.protect import PROTECTORS, protect
from dememo.protect import ar as ar_module
from dememo.protect.base import make_config
from dememo.protect.cuda import make_filters
from dememo.protect.ops import extreme_colours, pair_scores

METHODS = ["ops", "lsp", "ar", "cuda"]
DIGITS_OPTIONS = {"lsp": {"patch_size": 2}}  # 8 x 8 grey at patch 8 is one feature: too few for 10 classes


def synthetic(per_class=6, classes=4, shape=(3, 16, 16), seed=0, low=20, high=235) -> ImageSet:
    """Random images with no pixel at 0 or 255, labels cycling through the classes."""
    generator = torch.Generator().manual_seed(seed)
    n = per_class * classes
    images = torch.randint(low, high + 1, (n, *shape), generator=generator).to(torch.uint8)
    return ImageSet(images, torch.arange(n) % classes, tuple(f"c{i}" for i in range(classes)), "synthetic")


@pytest.fixture(scope="module")
def rgb() -> ImageSet:
    return synthetic()


def brute_scores(images: torch.Tensor) -> torch.Tensor:
    """OPS scores straight from the definition: (2**C, H*W), float64, [0, 1] units."""
    x = images.double().flatten(2) / 255  # (N, C, P)
    colours = extreme_colours(images.shape[1]).double()  # (V, C)
    d = (colours[:, None, :, None] - x[None]).abs()  # (V, N, C, P)
    std, mean = torch.std_mean(d, dim=(1, 2), correction=0)
    return mean / std


def distinct_rows(rows: torch.Tensor) -> bool:
    return len(torch.unique(rows.flatten(1), dim=0)) == len(rows)


# --- all methods ----------------------------------------------------------------------------------


def test_registered_with_paper_defaults():
    assert {"ops", "lsp", "ar", "cuda"} <= set(PROTECTORS.names())
    assert PROTECTORS.get("ops").Config().pixels == 2
    lsp = PROTECTORS.get("lsp").Config()
    assert (lsp.budget, lsp.patch_size, lsp.class_sep, lsp.budget_linf_cap) == (6 / 255, 8, 10.0, 1.0)
    ar = PROTECTORS.get("ar").Config()
    assert (ar.l2_norm, ar.window, ar.crop) == (1.0, 3, 4)
    cuda = PROTECTORS.get("cuda").Config()
    assert (cuda.blur_parameter, cuda.kernel_size) == (0.3, 3)
    assert all(PROTECTORS.get(m).description for m in METHODS)
    with pytest.raises(ConfigError, match="kernel_size"):
        make_config("cuda", kernel_size=4)
    with pytest.raises(ConfigError, match="pixels"):
        make_config("ops", pixels=0)


@pytest.mark.parametrize("which", ["digits", "rgb"])
@pytest.mark.parametrize("method", METHODS)
def test_release_is_uint8_and_changes_only_covered_samples(method, which, digits, rgb):
    data = digits.train if which == "digits" else rgb
    options = DIGITS_OPTIONS.get(method, {}) if which == "digits" else {}
    classes = (0, 2)
    perturbation = protect(method, data, seed=0, classes=classes, **options)
    covered = torch.isin(data.labels, torch.tensor(classes))
    assert torch.equal(perturbation.indices, torch.nonzero(covered).flatten())
    released = perturbation.apply(data)
    assert released.images.dtype == torch.uint8 and released.images.shape == data.images.shape
    assert torch.equal(released.labels, data.labels)
    changed = (released.images != data.images).flatten(1).any(1)
    assert not changed[~covered].any()
    assert changed[covered].float().mean() > 0.9


@pytest.mark.parametrize("method", METHODS)
def test_other_channel_counts_and_non_square_images(method):
    data = synthetic(per_class=3, classes=3, shape=(2, 10, 13))
    perturbation = protect(method, data, seed=0, **({"patch_size": 4} if method == "lsp" else {}))
    assert perturbation.shape == (2, 10, 13)
    assert (perturbation.apply(data).images != data.images).flatten(1).any(1).all()


@pytest.mark.parametrize("method", ["lsp", "ar", "cuda"])
def test_seed_decides_the_noise(method, rgb):
    first, again, other = (protect(method, rgb, seed=s) for s in (3, 3, 4))
    assert torch.equal(first.values, again.values)
    assert torch.equal(first.apply(rgb).images, again.apply(rgb).images)
    assert not torch.equal(first.values, other.values)


def test_ops_depends_on_the_seed_only_through_the_selection(rgb):
    assert torch.equal(protect("ops", rgb, seed=0).values, protect("ops", rgb, seed=1).values)
    first, again, other = (protect("ops", rgb, seed=s, fraction=0.5) for s in (0, 0, 1))
    assert torch.equal(first.indices, again.indices) and torch.equal(first.values, again.values)
    assert torch.equal(first.mask, again.mask)
    assert not torch.equal(first.indices, other.indices)


def test_global_random_state_is_left_alone(rgb):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    for method in METHODS:
        protect(method, rgb, seed=5)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state, strict=True))


# --- OPS ------------------------------------------------------------------------------------------


def test_ops_scores_match_the_definition(rgb):
    images = rgb.images[rgb.labels == 1]
    assert torch.allclose(pair_scores(images), brute_scores(images), rtol=1e-9)


def test_ops_paints_exactly_the_chosen_pixels(rgb):
    perturbation = protect("ops", rgb, seed=0)
    assert perturbation.mode == "replace" and perturbation.budget is None
    assert torch.equal(perturbation.groups, rgb.labels)  # class-wise rows
    assert perturbation.mask.flatten(1).sum(1).tolist() == [2] * rgb.num_classes
    released = perturbation.apply(rgb)
    changed = (released.images != rgb.images).any(1)  # (N, H, W)
    assert (changed.flatten(1).sum(1) == 2).all()  # no pixel of the data is 0 or 255
    for n, cls in enumerate(rgb.labels.tolist()):
        where = perturbation.mask[cls, 0]
        assert torch.equal(changed[n], where)
        colours = perturbation.values[cls][:, where]
        assert torch.equal(released.images[n][:, where], (colours * 255).to(torch.uint8))
    pairs = []
    for cls in range(rgb.num_classes):
        where = perturbation.mask[cls, 0]
        colours = perturbation.values[cls][:, where]
        assert set(colours.unique().tolist()) <= {0.0, 1.0}  # extreme colours
        assert not perturbation.values[cls][:, ~where].any()
        positions = torch.nonzero(where.flatten()).flatten().tolist()
        pairs += [(p, tuple(c)) for p, c in zip(positions, colours.t().tolist(), strict=True)]
    assert len(pairs) == len(set(pairs))  # unique across classes


def test_ops_takes_the_best_pairs_in_class_order(rgb):
    perturbation = protect("ops", rgb, seed=0)
    width, colours = rgb.image_size[1], extreme_colours(3).int().tolist()
    reserved: set[tuple[int, int]] = set()
    for cls in range(rgb.num_classes):
        scores = brute_scores(rgb.images[rgb.labels == cls])  # (V, P)
        for p, v in reserved:
            scores[v, p] = -math.inf
        got = [
            (e["row"] * width + e["col"], colours.index(e["colour"]))
            for e in perturbation.config["pairs"]
            if e["class"] == cls
        ]
        assert len(got) == 2 and got[0][0] != got[1][0] and not reserved & set(got)
        # exact ties occur (a channel whose class mean is 127.5 scores the same for c_k = 0 and 1)
        assert scores[got[0][1], got[0][0]] == pytest.approx(float(scores.max()), rel=1e-9)
        scores[:, got[0][0]] = -math.inf
        assert scores[got[1][1], got[1][0]] == pytest.approx(float(scores.max()), rel=1e-9)
        reserved |= set(got)


def test_ops_reserves_exact_pairs_and_survives_zero_spread():
    data = synthetic(per_class=5, classes=3, seed=1)
    images = data.images.clone()
    images[:, :, 0, 0] = 30  # the same dark pixel in every image of every class: std 0
    data = ImageSet(images, data.labels, data.classes, "dark-corner")
    perturbation = protect("ops", data, seed=0, pixels=1)
    assert torch.isfinite(pair_scores(images[data.labels == 0])).all()
    pairs = [(e["row"], e["col"], tuple(e["colour"])) for e in perturbation.config["pairs"]]
    assert pairs[0] == (0, 0, (1, 1, 1))  # white on a constant dark pixel: infinite-like score
    assert len(set(pairs)) == 3  # the exact pair is reserved for the later classes
    released = perturbation.apply(data)
    assert (released.images[data.labels == 0][:, :, 0, 0] == 255).all()


def test_ops_on_grey_digits_paints_one_pixel_per_image(digits):
    data = digits.train
    perturbation = protect("ops", data, seed=0, pixels=1)
    assert perturbation.values.shape == (10, 1, 8, 8)
    assert perturbation.mask.flatten(1).sum(1).tolist() == [1] * 10
    changed = (perturbation.apply(data).images != data.images).flatten(1).sum(1)
    assert changed.max() == 1 and changed.float().mean() > 0.9


# --- LSP ------------------------------------------------------------------------------------------


def test_lsp_is_sample_wise_block_constant_and_l2_scaled(rgb):
    perturbation = protect("lsp", rgb, seed=0)
    values = perturbation.values.double()
    assert torch.equal(perturbation.groups, torch.arange(len(rgb)))
    for cls in range(rgb.num_classes):
        assert distinct_rows(values[rgb.labels == cls])
    blocks = values.reshape(len(rgb), 3, 2, 8, 2, 8)  # 8 x 8 patches of a 16 x 16 image
    assert (blocks == blocks[:, :, :, :1, :, :1]).all()
    norms = values.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(3 * 16 * 16) * 6 / 255), rtol=1e-5)
    assert perturbation.budget == pytest.approx(float(values.abs().max()))
    assert perturbation.budget > 6 / 255  # the reference's l2 scaling has no l_inf bound
    means = torch.stack([values[rgb.labels == c].mean(0) for c in range(rgb.num_classes)])
    nearest = torch.cdist(values.flatten(1), means.flatten(1)).argmin(1)
    assert (nearest == rgb.labels).float().mean() >= 0.9  # class clusters


def test_lsp_linf_cap_and_uneven_patches():
    data = synthetic(per_class=4, classes=3, shape=(3, 12, 12))
    perturbation = protect("lsp", data, seed=0, budget_linf_cap=0.02, patch_size=5)  # 3 x 3 patches
    assert perturbation.budget <= 0.02 + 1e-7
    assert float(perturbation.values.abs().max()) == pytest.approx(0.02)
    blocks = perturbation.values[:, :, :10, :10].reshape(len(data), 3, 2, 5, 2, 5)
    assert (blocks == blocks[:, :, :, :1, :, :1]).all()


def test_lsp_too_few_features_names_a_patch_size(digits):
    with pytest.raises(ConfigError, match="patch_size=7 fits"):
        protect("lsp", digits.train, seed=0)


# --- AR -------------------------------------------------------------------------------------------


def test_ar_process_follows_its_recursion():
    generator = torch.Generator().manual_seed(0)
    b = ar_module.draw_coefficients(1, 2, 3, generator)[0]
    assert (b[:, -1, -1] == 0).all()
    assert torch.allclose(b.sum((1, 2)), torch.ones(2, dtype=torch.float64))
    smooth = torch.full((2, 3, 3), 1 / 8, dtype=torch.float64)
    smooth[:, -1, -1] = 0
    x = ar_module.generate_ar(smooth, 4, (6, 7), 2, generator)
    assert x.shape == (4, 2, 6, 7)
    for i in range(2, 6):
        for j in range(2, 7):
            predicted = (x[..., i - 2 : i + 1, j - 2 : j + 1] * smooth).sum((-2, -1))
            assert torch.allclose(x[..., i, j], predicted)


def test_ar_is_sample_wise_finite_and_l2_normed(rgb):
    perturbation = protect("ar", rgb, seed=0)
    values = perturbation.values.double()
    assert torch.isfinite(values).all()
    norms = values.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), rtol=1e-5)
    for cls in range(rgb.num_classes):
        assert distinct_rows(values[rgb.labels == cls])
    assert perturbation.budget == pytest.approx(float(values.abs().max()))
    assert 0 < perturbation.budget <= 1


def divergent_set(channels: int) -> torch.Tensor:
    b = torch.full((channels, 3, 3), 2.0, dtype=torch.float64)
    b[:, -1, -1] = 0
    return b


def test_ar_rejects_a_divergent_process(monkeypatch, rgb):
    generator = torch.Generator().manual_seed(0)
    blown = ar_module.generate_ar(divergent_set(3), 3, (32, 32), 4, generator)
    assert not ar_module.accepted(blown[None], 50.0).item()  # the reference's NaN / inf case
    original = ar_module.draw_coefficients
    calls = []

    def divergent_first(count, channels, window, generator):
        b = original(count, channels, window, generator)
        if not calls:  # class 0: a divergent set first, then a surely stable (averaging) one
            b[0] = divergent_set(channels)
            b[1] = 1 / 8
            b[1, :, -1, -1] = 0
        calls.append(count)
        return b

    monkeypatch.setattr(ar_module, "draw_coefficients", divergent_first)
    perturbation = protect("ar", rgb, seed=0)
    assert perturbation.config["redraws"][0] == 1
    assert torch.isfinite(perturbation.values).all()
    norms = perturbation.values.double().flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), rtol=1e-5)


def test_ar_gives_up_with_a_clear_error(monkeypatch, rgb):
    def always_divergent(count, channels, window, generator):
        return divergent_set(channels).expand(count, -1, -1, -1).clone()

    monkeypatch.setattr(ar_module, "draw_coefficients", always_divergent)
    with pytest.raises(ConfigError, match="no stable AR process found for class 0"):
        protect("ar", rgb, seed=0, max_redraws=40)


# --- CUDA -----------------------------------------------------------------------------------------


def test_cuda_kernels_have_one_unit_entry_at_a_random_spot_and_no_normalisation():
    """As in the official final_filter_unlearnable.py: U(0, blur) entries, one 1.0 per class at a
    random position (not always the centre), one kernel for all channels, no sum normalisation."""
    filters = make_filters(40, 3, 0.3, torch.Generator().manual_seed(0))
    assert filters.shape == (40, 3, 3)
    flat = filters.flatten(1)
    assert (flat == 1.0).sum(1).eq(1).all() and ((flat < 1.0) <= (flat <= 0.3)).all()
    spots = set(flat.argmax(1).tolist())
    assert len(spots) > 3  # the unit entry moves between classes
    assert not torch.allclose(flat.sum(1), torch.ones(40, dtype=torch.float64))


def test_cuda_blurs_with_one_filter_per_class():
    # per class: two impulse images at different places, and one constant image
    images = torch.zeros(6, 3, 12, 12, dtype=torch.uint8)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    spots = {0: (3, 4), 1: (7, 8), 3: (3, 4), 4: (8, 5)}
    for n, (r, c) in spots.items():
        images[n, :, r, c] = 255
    images[[2, 5]] = 128
    data = ImageSet(images, labels, ("a", "b"), "impulses")
    perturbation = protect("cuda", data, seed=0)
    assert perturbation.budget == 1.0 and perturbation.mode == "additive"
    released = perturbation.apply(data).images
    response = {n: released[n, :, r - 1 : r + 2, c - 1 : c + 2] for n, (r, c) in spots.items()}
    for n, (r, c) in spots.items():  # nothing leaks outside the 3 x 3 neighbourhood
        outside = released[n].clone()
        outside[:, r - 1 : r + 2, c - 1 : c + 2] = 0
        assert not outside.any()
    assert torch.equal(response[0], response[1]) and torch.equal(response[3], response[4])
    assert not torch.equal(response[0], response[3])
    for n in spots:  # one kernel for all channels; each image divided by its own maximum
        assert torch.equal(response[n][0], response[n][1]) and torch.equal(response[n][0], response[n][2])
        assert int(response[n].max()) == 255
    for n in (2, 5):  # a constant image: interior at the image's maximum, darker where padding reaches
        assert (released[n, :, 1:-1, 1:-1] == 255).all()
        assert (released[n, :, 0, 0] < 255).all()
