"""The trainer: accuracy on real data, determinism, NaN handling, recipes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dememo import runtime
from dememo.errors import ConfigError, TrainingError
from dememo.models import build_model
from dememo.pipeline import TrainConfig, new_model, train_or_load
from dememo.store import ArtifactStore
from dememo.train import (
    RECIPES,
    Recipe,
    accuracy,
    get_recipe,
    lr_factor,
    make_optimizer,
    predict_logits,
    set_lr,
    train,
)


def test_small_net_on_digits_reaches_90_percent(digits, tmp_path):
    config = TrainConfig(dataset="digits", model="tinycnn", recipe=get_recipe("quick"), seed=0)
    trained = train_or_load(config, digits, ArtifactStore(tmp_path))
    assert not trained.reused
    assert trained.artifact.metrics["test_accuracy"] >= 0.90
    assert accuracy(trained.model, digits.test) == pytest.approx(trained.artifact.metrics["test_accuracy"])
    again = train_or_load(config, digits, ArtifactStore(tmp_path))
    assert again.reused
    assert accuracy(again.model, digits.test) == pytest.approx(trained.artifact.metrics["test_accuracy"])


def test_same_seed_same_weights(digits):
    recipe = get_recipe("quick", epochs=2)
    config = TrainConfig(dataset="digits", model="mlp", recipe=recipe)
    weights = []
    for _ in range(2):
        model = new_model(config, digits.train)
        train(model, digits.train, recipe, seed=5)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


class _NanAfterWarmup(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        return out * float("nan") if self.calls > 3 else out


def test_nan_loss_stops_training_without_touching_the_stored_model(digits, tmp_path):
    store = ArtifactStore(tmp_path)
    config = TrainConfig(dataset="digits", model="mlp", recipe=get_recipe("quick", epochs=2))
    good = train_or_load(config, digits, store)
    before = (good.artifact.path / "tensors.safetensors").read_bytes()
    model = _NanAfterWarmup(new_model(config, digits.train))
    with pytest.raises(TrainingError, match="loss became nan in epoch 1"):
        train(model, digits.train, config.recipe)
    assert (good.artifact.path / "tensors.safetensors").read_bytes() == before


def test_paper_recipes_match_table_6():
    sgd = RECIPES.get("paper-sgd-cifar10")
    assert (sgd.epochs, sgd.lr, sgd.momentum, sgd.weight_decay) == (60, 0.1, 0.9, 5e-4)
    assert sgd.augment.crop_padding == 4 and sgd.augment.flip and sgd.augment.rotation == 0
    assert RECIPES.get("paper-sgd-cifar100").weight_decay == 5e-5
    assert RECIPES.get("paper-sgd-cifar100").augment.rotation > 0
    vit = RECIPES.get("paper-adamw-cifar10")
    assert (vit.optimizer, vit.lr, vit.weight_decay, vit.epochs) == ("adamw", 3e-4, 0.05, 60)


def test_schedules():
    recipe = get_recipe("fast")
    assert lr_factor(recipe, 0, 100) == pytest.approx(0.1)
    assert lr_factor(recipe, 20, 100) == pytest.approx(1.0)
    assert lr_factor(recipe, 100, 100) == pytest.approx(0.0)
    cosine = get_recipe("paper-sgd-cifar10")
    assert lr_factor(cosine, 50, 100) == pytest.approx(0.5)


def test_bad_recipe_names_and_overrides():
    with pytest.raises(ConfigError, match="unknown recipe 'slow'.*fast"):
        get_recipe("slow")
    with pytest.raises(ValueError, match="epochs"):
        get_recipe("fast", epochs=0)


@pytest.mark.slow
def test_fastnet_beats_60_percent_on_cifar10_subset(cifar10, tmp_path):
    """5000 real CIFAR-10 training images (500 a class), 2000 test images."""
    config = TrainConfig(
        dataset="cifar10", model="fastnet", recipe=get_recipe("fast"),
        train_per_class=500, test_per_class=200,
    )  # fmt: skip
    trained = train_or_load(config, cifar10, ArtifactStore(tmp_path))
    metrics = trained.artifact.metrics
    assert (metrics["train_size"], metrics["test_size"]) == (5000, 2000)
    assert metrics["test_accuracy"] > 0.60, metrics


def test_training_precision_is_resolved_and_keyed_and_evaluation_is_fp32(digits, tmp_path, monkeypatch):
    """On a CPU with (forced) AVX-512 BF16, 'auto' trains in bf16: the artifact says bf16 and
    is not the fp32 one; accuracies and logits are fp32 on every CPU (an AVX2 machine gives
    the same numbers)."""
    store = ArtifactStore(tmp_path)
    config = TrainConfig(dataset="digits", model="tinycnn", recipe=get_recipe("quick", epochs=1))
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    bf16 = train_or_load(config, digits, store)
    assert bf16.artifact.manifest["config"]["precision"] == "bf16"
    model = bf16.model.eval()
    with torch.no_grad():
        plain = model(digits.test.images.float() / 255)
    assert torch.allclose(predict_logits(model, digits.test), plain, atol=1e-4)
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    fp32 = train_or_load(config, digits, store)
    assert not fp32.reused and fp32.artifact.path != bf16.artifact.path
    assert fp32.artifact.manifest["config"]["precision"] == "fp32"
    assert train_or_load(config.model_copy(update={"precision": "bf16"}), digits, store).reused


def test_airbench_recipe_scales_batchnorm_shifts_and_keeps_old_recipe_dumps():
    recipe = get_recipe("airbench")
    model = build_model("airbench", 3, 10, (32, 32))
    groups = make_optimizer(model, recipe).param_groups
    shifts = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {id(p) for p in groups[1]["params"]} == shifts
    assert groups[1]["lr"] == pytest.approx(64 * recipe.lr)
    assert groups[1]["lr"] * groups[1]["weight_decay"] == pytest.approx(recipe.lr * recipe.weight_decay)
    assert (
        "norm_bias_lr_scale" in recipe.model_dump()
        and "norm_bias_lr_scale" not in get_recipe("fast").model_dump()
    )
    assert Recipe.model_validate(recipe.model_dump()) == recipe
    set_lr(make_optimizer(model, recipe), recipe, 0, 10)
    assert len(make_optimizer(build_model("fastnet", 3, 10, (32, 32)), recipe).param_groups) == 2
    assert len(make_optimizer(build_model("mlp", 3, 10, (8, 8)), recipe).param_groups) == 1
