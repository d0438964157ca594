"""Protection methods: invariants, pitfalls of the reference code, bad input, storage."""

from __future__ import annotations

import pytest
import torch

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError, DataError
from dememo.models import build_model
from dememo.protect import PROTECTORS, Perturbation, protect
from dememo.protect.error_min import ErrorMinimizing, _replace_with_class_means, stratified_subset
from dememo.protect.jobs import protect_or_load
from dememo.protect.pue import ProvablyUnlearnable
from dememo.protect.simclr import class_separability, nt_xent, simclr_augment
from dememo.runtime import seed_everything
from dememo.store import ArtifactStore
from dememo.train import accuracy, get_recipe, train

FAST_MINMIN = {"surrogate": "tinycnn", "max_rounds": 2, "pgd_steps": 3}


@pytest.fixture(scope="module")
def ue_s(digits):
    return protect("ue-s", digits.train, seed=3, **FAST_MINMIN)


def test_all_paper_methods_are_registered():
    assert {"ue-s", "ue-c", "pue", "tue", "tap", "ops", "lsp", "ar", "cuda"} <= set(PROTECTORS)


def test_budget_holds_after_quantization_and_pixels_stay_in_range(digits, ue_s):
    released = ue_s.apply(digits.train)
    change = released.images.int() - digits.train.images.int()
    assert released.images.dtype == torch.uint8
    assert int(change.abs().max()) <= 8  # 8/255
    # image + noise is clamped, not the noise: a saturated pixel pushed up stays at 255
    expected = (digits.train.images.float() + ue_s.quantized_rows()[ue_s.groups]).clamp(0, 255)
    assert torch.equal(released.images, expected.to(torch.uint8))


def test_budget_not_a_multiple_of_one_255th_is_still_respected(digits):
    budget = 7.6 / 255
    p = protect("ue-s", digits.train, budget=budget, **FAST_MINMIN)
    change = p.apply(digits.train).images.int() - digits.train.images.int()
    assert int(change.abs().max()) <= 7


def test_sample_wise_noise_is_indexed_by_sample_and_differs_within_a_class(digits, ue_s):
    assert torch.equal(ue_s.groups, torch.arange(len(digits.train)))
    same_class = torch.nonzero(digits.train.labels == 4).flatten()[:2]
    assert not torch.equal(ue_s.values[same_class[0]], ue_s.values[same_class[1]])


@pytest.mark.parametrize("method", ["ue-c", "pue"])
def test_class_wise_noise_is_identical_within_a_class(digits, method):
    options = {**FAST_MINMIN, "train_draws": 2, "noise_draws": 1} if method == "pue" else FAST_MINMIN
    p = protect(method, digits.train, **options)
    assert len(p.values) == digits.train.num_classes
    assert torch.equal(p.groups, digits.train.labels)
    released = p.apply(digits.train).images.int() - digits.train.images.int()
    a, b = torch.nonzero(digits.train.labels == 2).flatten()[:2]
    unclipped = (digits.train.images[a] > 8) & (digits.train.images[a] < 247) & \
        (digits.train.images[b] > 8) & (digits.train.images[b] < 247)  # fmt: skip
    assert torch.equal(released[a][unclipped], released[b][unclipped])


def test_same_seed_same_noise_other_seed_other_noise(digits, ue_s):
    again = protect("ue-s", digits.train, seed=3, **FAST_MINMIN)
    other = protect("ue-s", digits.train, seed=4, **FAST_MINMIN)
    assert torch.equal(ue_s.values, again.values)
    assert not torch.equal(ue_s.values, other.values)


def test_error_minimizing_noise_makes_the_surrogate_task_easy(digits):
    p = protect("ue-s", digits.train.head(40), surrogate="tinycnn", max_rounds=40)
    accuracies = p.config["surrogate_accuracy"]
    assert accuracies[-1] >= 0.99 and len(accuracies) < 40


def test_class_mean_update_replaces_present_classes_only():
    delta = torch.zeros(3, 1, 2, 2)
    delta[2] = 5.0
    stepped = torch.stack([torch.full((1, 2, 2), v) for v in (1.0, 3.0, 4.0)])
    _replace_with_class_means(delta, torch.tensor([0, 0, 1]), stepped)
    assert torch.all(delta[0] == 2.0) and torch.all(delta[1] == 4.0) and torch.all(delta[2] == 5.0)


def test_stratified_subset_keeps_every_class():
    labels = torch.tensor([0] * 10 + [1] * 5 + [2])
    picked = stratified_subset(labels, 0.2, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[picked]).tolist() == [2, 1, 1]


def test_pue_sigma_levels_and_weight_noise(digits):
    config = PROTECTORS.get("pue").Config()
    pue = ProvablyUnlearnable(config, torch.device("cpu"))
    assert pue._sigmas() == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 0.25])
    assert not pue._robust([0.3, 0.5]) and pue._robust([0.3, 0.51])
    pue.generator = torch.Generator().manual_seed(0)
    model = build_model("tinycnn", 1, 10, (8, 8)).eval()
    x, y = digits.train.images[:64].float() / 255, digits.train.labels[:64]
    with torch.no_grad():
        (unperturbed,) = pue._weight_draws(model, 0.0, 10)  # sigma 0: the model's own weights, once
        plain = float(pue._loss(model, unperturbed, x, y))
        noisy = [float(pue._loss(model, params, x, y)) for params in pue._weight_draws(model, 0.25, 3)]
    assert len(noisy) == 3 and len(set(noisy)) == 3 and plain not in noisy


def test_tap_pushes_the_surrogate_towards_the_next_class(digits):
    """Targeted noise (y+1 mod C) against the clean surrogate, rebuilt here from the same seed."""
    p = protect("tap", digits.train, surrogate="tinycnn", surrogate_recipe="quick", steps=30, restarts=1,
                budget=64 / 255, step_fraction=0.1, max_shift=0, flip=False)  # fmt: skip
    seed_everything(0)
    model = build_model("tinycnn", 1, 10, (8, 8), *digits.train.channel_stats())
    train(model, digits.train, get_recipe("quick"), seed=0)
    targets = (digits.train.labels + 1) % 10

    def hit_rate(images):
        return accuracy(model, ImageSet(images, targets, digits.train.classes))

    assert hit_rate(digits.train.images) < 0.05
    assert hit_rate(p.apply(digits.train).images) > 0.2


def test_csd_spread_gradient_option_also_shrinks_within_class_spread():
    torch.manual_seed(0)
    noise = torch.randn(20, 3, 4, 4, requires_grad=True)
    labels = torch.tensor([0] * 10 + [1] * 10)
    class_separability(noise, labels, spread_gradient=True).backward()
    with torch.no_grad():
        stepped = noise - 0.1 * noise.grad
        flat, centered = stepped.flatten(1), noise.flatten(1)
        spread_after = (flat[:10] - flat[:10].mean(0)).norm(dim=1).mean()
        spread_before = (centered[:10] - centered[:10].mean(0)).norm(dim=1).mean()
    assert spread_after < spread_before
    assert float(class_separability(stepped, labels)) < float(class_separability(noise.detach(), labels))


def test_nt_xent_prefers_matching_views():
    z = torch.nn.functional.one_hot(torch.arange(8), 16).float()
    assert float(nt_xent(z, z, 0.5)) < float(nt_xent(z, z.roll(1, 0), 0.5))


def test_simclr_augment_keeps_shape_and_range():
    x = torch.rand(16, 3, 16, 16)
    out = simclr_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("budget", [0, -0.1, 1.5])
def test_bad_budget_is_rejected(digits, budget):
    with pytest.raises(ConfigError, match="budget must be in \\(0, 1\\]"):
        protect("ue-s", digits.train, budget=budget)


def test_unknown_method_and_option_are_named(digits):
    with pytest.raises(ConfigError, match="unknown protection method 'em'.*ue-s"):
        protect("em", digits.train)
    with pytest.raises(ConfigError, match="ue-s: invalid options.*pgd_stepz"):
        protect("ue-s", digits.train, pgd_stepz=3)


def test_classes_outside_the_dataset_are_rejected(digits):
    with pytest.raises(ConfigError, match=r"classes \[10\] are outside .* 0\.\.9"):
        protect("ue-s", digits.train, classes=(1, 10))


def test_perturbation_for_another_dataset_is_rejected(digits, ue_s):
    with pytest.raises(DataError, match="made for 1257 samples, .* has 540"):
        ue_s.apply(digits.test)
    wrong_shape = ImageSet(torch.zeros(len(digits.train), 1, 9, 9, dtype=torch.uint8), digits.train.labels,
                           digits.train.classes, "wrong")  # fmt: skip
    with pytest.raises(DataError, match=r"image shape \(1, 8, 8\), wrong has \(1, 9, 9\)"):
        ue_s.apply(wrong_shape)


def test_fraction_and_classes_select_covered_samples(digits):
    p = protect("ue-c", digits.train, classes=(0, 1), fraction=0.5, **FAST_MINMIN)
    eligible = int(torch.isin(digits.train.labels, torch.tensor([0, 1])).sum())
    assert len(p.indices) == round(eligible / 2)
    assert set(digits.train.labels[p.indices].tolist()) == {0, 1}
    changed = (p.apply(digits.train).images != digits.train.images).flatten(1).any(1)
    assert not changed[~torch.isin(torch.arange(len(digits.train)), p.indices)].any()


def test_store_round_trip_and_reuse(digits, tmp_path):
    store = ArtifactStore(tmp_path)
    first = protect_or_load("ue-s", digits, digits.train, store, **FAST_MINMIN)
    again = protect_or_load("ue-s", digits, digits.train, store, **FAST_MINMIN)
    assert again.reused and not first.reused
    assert torch.equal(again.perturbation.values, first.perturbation.values)
    assert torch.equal(
        again.perturbation.apply(digits.train).images, first.perturbation.apply(digits.train).images
    )
    assert isinstance(again.perturbation, Perturbation) and again.key == first.key


def test_interrupted_generation_leaves_no_artifact(digits, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ErrorMinimizing, "_noise_pass", interrupt)
    with pytest.raises(KeyboardInterrupt):
        protect_or_load("ue-s", digits, digits.train, ArtifactStore(tmp_path), **FAST_MINMIN)
    assert not any(tmp_path.rglob("*.safetensors"))
    assert not any(p.is_dir() and p.name != "perturbation" for p in tmp_path.rglob("*"))
