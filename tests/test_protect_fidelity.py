"""Fidelity to each method's official code: behaviours that an earlier version got wrong."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from dememo.data.imageset import ImageSet
from dememo.models import build_model
from dememo.profiling import SavedBytes
from dememo.protect import PROTECTORS, protect
from dememo.protect.error_min import ErrorMinimizing
from dememo.protect.presets import PRESETS, TUE_SETTINGS
from dememo.protect.pue import ProvablyUnlearnable
from dememo.protect.simclr import class_separability
from dememo.protect.tap import translate_flip

# --- PUE ------------------------------------------------------------------------------------------


def _pue(**options) -> ProvablyUnlearnable:
    pue = ProvablyUnlearnable(PROTECTORS.get("pue").Config(**options), torch.device("cpu"))
    pue.generator = torch.Generator().manual_seed(0)
    return pue


def _batch(digits, n=32):
    return digits.train.images[:n].float() / 255, digits.train.labels[:n]


def test_pue_official_batch_size_and_stop():
    config = PROTECTORS.get("pue").Config()
    assert (config.train_batch_size, config.noise_batch_size, config.stop_accuracy) == (128, 128, 0.9)


def test_pue_robust_step_divides_each_draw_by_levels_times_draws(digits):
    """With negligible weight noise every draw has the plain gradient g, so each of the two sigma
    levels must take the step lr * g / 2 (the official loss / (levels x draws)), not lr * g."""
    pue = _pue(sigma_max=1e-7, sigma_step=1e-7, train_draws=3, grad_clip=1e9)
    assert len(pue._sigmas()) == 2
    torch.manual_seed(0)
    model = build_model("tinycnn", 1, 10, (8, 8)).train()
    reference = copy.deepcopy(model)
    x, y = _batch(digits)
    pue.surrogate_update(model, torch.optim.SGD(model.parameters(), lr=0.5), x, y, history=[0.6])
    for _ in range(2):  # by hand: two plain steps of half the averaged gradient
        grads = torch.autograd.grad(F.cross_entropy(reference(x), y), list(reference.parameters()))
        with torch.no_grad():
            for p, g in zip(reference.parameters(), grads, strict=True):
                p -= 0.5 * g / 2
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


@pytest.mark.parametrize("phase", ["surrogate", "noise"])
def test_pue_memory_does_not_grow_with_the_draw_count(digits, phase):
    x, y = _batch(digits, 64)
    peaks = []
    for draws in (2, 8):
        pue = _pue(train_draws=draws, noise_draws=draws, pgd_steps=1)
        torch.manual_seed(0)
        model = build_model("tinycnn", 1, 10, (8, 8))
        with SavedBytes() as saved:
            if phase == "surrogate":
                pue.surrogate_update(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, [0.6])
            else:
                for p in model.parameters():
                    p.requires_grad_(False)
                pue.noise_update(model.eval(), x, y, torch.zeros_like(x), [0.6])
        peaks.append(saved.peak)
    assert peaks[0] > 0 and peaks[1] <= 1.05 * peaks[0], peaks


# --- UE-c -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "rounds"), [("ue-c", 3), ("ue-s", 5)])
def test_class_wise_ue_stops_at_90_percent_sample_wise_at_99(digits, monkeypatch, method, rounds):
    script = iter([0.5, 0.85, 0.92, 0.95, 0.99, 1.0])
    monkeypatch.setattr(ErrorMinimizing, "_noise_pass", lambda *args: next(script))
    p = protect(method, digits.train.head(5), surrogate="tinycnn", train_steps=1, max_rounds=6)
    assert p.config["rounds"] == rounds


# --- TUE ------------------------------------------------------------------------------------------


def test_csd_default_treats_the_within_class_spread_as_constant():
    """Official get_linear_noise_csd_loss: the spread is detached, so the gradient flows through the
    class means only and is the same for every sample of a class."""
    torch.manual_seed(0)
    noise = torch.randn(20, 3, 4, 4, requires_grad=True)
    labels = torch.tensor([0] * 10 + [1] * 10)
    (grad,) = torch.autograd.grad(class_separability(noise, labels), noise)
    assert torch.allclose(grad[:10], grad[:1].expand(10, -1, -1, -1))
    assert torch.allclose(grad[10:], grad[10:11].expand(10, -1, -1, -1))
    (through,) = torch.autograd.grad(class_separability(noise, labels, spread_gradient=True), noise)
    assert not torch.allclose(through[:10], through[:1].expand(10, -1, -1, -1))


def test_tue_defaults_and_presets_follow_the_official_demo():
    config = PROTECTORS.get("tue").Config()
    assert (config.ssl_weight, config.csd_weight, config.csd_spread_gradient) == (0.0, 0.1, False)
    assert PRESETS["paper"]["tue"] == TUE_SETTINGS["simclr-demo"]
    assert PRESETS["paper-tue-combined"]["tue"] == {"ssl_weight": 1.0, "csd_weight": 0.1}


def test_tue_with_the_demo_weights_makes_class_separable_noise(digits):
    data = digits.train.head(20)
    p = protect("tue", data, surrogate="tinycnn", rounds=3, pgd_steps=5, batch_size=200)
    assert float(class_separability(p.values, data.labels)) < 0.5 * float(
        class_separability(torch.empty_like(p.values).uniform_(-p.budget, p.budget), data.labels)
    )


# --- LSP and AR -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "options"), [("lsp", {}), ("ar", {"l2_norm": 1.5})])
def test_l2_method_releases_are_within_half_a_level(method, options):
    """The largest |value| is not a whole number of levels; rounding must not clip it (the old
    floor of budget*255 cut the largest values by up to one level)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(110, 146, (40, 3, 16, 16), dtype=torch.uint8, generator=generator)
    data = ImageSet(images, torch.arange(40) % 4, ("a", "b", "c", "d"), "mid-grey")
    for seed in range(8):  # find a case whose largest value sits above the half level
        p = protect(method, data, seed=seed, **options)
        if (p.budget * 255) % 1 > 0.5:
            break
    else:
        pytest.fail("no seed gave a largest value with a fraction above half a level")
    exact = images.float() + p.values * 255
    assert exact.min() >= 0 and exact.max() <= 255  # no pixel-range clamp in play
    error = (p.apply(data).images.float() - exact).abs()
    assert float(error.max()) <= 0.5 + 1e-4


# --- TAP ------------------------------------------------------------------------------------------


def test_tap_translation_is_continuous_bilinear_and_bounded():
    ramp = torch.arange(16.0).repeat(16, 1).view(1, 1, 16, 16).expand(64, 1, 16, 16).contiguous()
    out = translate_flip(ramp, 4.0, False, torch.Generator().manual_seed(0))
    interior = out[:, 0, 6:10, 6:10]  # far from the zero padding
    shift = (interior - ramp[:, 0, 6:10, 6:10]).mean((1, 2))  # a ramp shifted by s reads x + s
    assert shift.abs().max() <= 4 + 1e-4 and shift.abs().max() > 2
    assert ((shift - shift.round()).abs() > 0.05).float().mean() > 0.5  # mostly non-integer shifts
    flipped = translate_flip(ramp, 0.0, True, torch.Generator().manual_seed(0))
    mirrored = ((flipped - ramp.flip(-1)).abs() < 1e-3).flatten(1).all(1)
    kept = ((flipped - ramp).abs() < 1e-3).flatten(1).all(1)
    assert (mirrored | kept).all() and 10 < int(mirrored.sum()) < 54


def test_tap_keeps_the_restart_with_the_lowest_loss_over_the_whole_pass(digits):
    data = digits.train.head(12)
    p = protect("tap", data, surrogate="tinycnn", surrogate_recipe="quick", steps=2, restarts=3,
                batch_size=40)  # fmt: skip
    losses = p.config["restart_losses"]
    assert len(losses) == 3 and len(set(losses)) == 3
    single = protect("tap", data, surrogate="tinycnn", surrogate_recipe="quick", steps=2, restarts=1,
                     batch_size=40)  # fmt: skip
    if losses.index(min(losses)) == 0:  # the first restart won: the whole pass is that restart's noise
        assert torch.equal(p.values, single.values)
    else:
        assert not torch.equal(p.values, single.values)
