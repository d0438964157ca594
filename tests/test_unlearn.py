"""Unlearning methods where the truth is known: logistic regression for IF, batch
instrumentation for RT/FT, exact retraining for SISA, hand values for certified."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

from dememo.data import batches
from dememo.data.augment import Augment
from dememo.data.imageset import ImageSet
from dememo.errors import ArtifactError, ConfigError, DataError
from dememo.models import MODELS
from dememo.pipeline import TrainConfig, fresh_model, new_model, train_or_load
from dememo.store import ArtifactStore
from dememo.train import get_recipe, predict_logits
from dememo.unlearn import CertifiedAccountant, load_unlearned, make_config, rt, unlearn, unlearn_or_load
from dememo.unlearn.certified import CertifiedConfig
from dememo.unlearn.influence import exact_hessian, exact_plan, flat, trainable, unflatten
from dememo.unlearn.jobs import parent_training_set
from dememo.unlearn.sisa import SisaConfig, train_sisa

LAMBDA = 1e-2  # L2 regularization of the logistic regression


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def fit_logistic(data: ImageSet, indices: torch.Tensor, init: nn.Module | None = None) -> nn.Module:
    """Multinomial logistic regression on pixels, L2-regularized, solved in float64 and
    returned in float32.

    In float32, L-BFGS stops where rounding stops it: a residual gradient of 3e-5 to 1e-4
    whose size depends on the CPU's SIMD reduction order (AVX-512 vs AVX2). Divided by the
    smallest Hessian eigenvalue (>= LAMBDA) it moved the Newton test's error from 1.6e-2
    to 2.4e-2 between machines. In float64 the residual is below 1e-9 on every CPU.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(data.images[0].numel(), data.num_classes)).double()
    if init is not None:
        model.load_state_dict({k: v.double() for k, v in init.state_dict().items()})
    x = data.images[indices].double() / 255
    y = data.labels[indices]
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
        history_size=50, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y) + LAMBDA / 2 * flat_params_grad(model).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    return model.float()


def flat_params_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.flatten() for p in model.parameters()])


def mean_loss(model: nn.Module, data: ImageSet, indices: torch.Tensor) -> float:
    logits = predict_logits(model, data, indices=indices)
    return float(F.cross_entropy(logits, data.labels[indices]))


@pytest.fixture(scope="module")
def logistic(digits):
    data = digits.train
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(len(data), generator=generator)
    forget, retain = torch.sort(order[:60]).values, torch.sort(order[60:]).values
    full = fit_logistic(data, torch.arange(len(data)))
    retrained = fit_logistic(data, retain, init=full)
    return data, forget, retain, full, retrained


def test_exact_newton_removal_matches_retraining(logistic):
    data, forget, retain, full, retrained = logistic
    newton = unlearn("if", full, data, forget, retain, inverse="exact", damping=LAMBDA, alpha=1.0,
                     augment=False).model  # fmt: skip
    target = flat_params(retrained) - flat_params(full)
    error = (flat_params(newton) - flat_params(retrained)).norm() / target.norm()
    print(f"Newton removal vs retraining: error {error:.2e} of the retraining shift")
    assert error < 0.02, f"Newton removal misses retraining by {error:.4f} of the retraining shift"


def test_woodfisher_step_points_like_the_exact_step(logistic):
    data, forget, retain, full, _ = logistic
    exact = flat_params(
        unlearn("if", full, data, forget, retain, inverse="exact", damping=LAMBDA, augment=False).model
    )
    wood = flat_params(unlearn("if", full, data, forget, retain, damping=LAMBDA, fisher_samples=10_000,
                               augment=False).model)  # fmt: skip
    base = flat_params(full)
    cosine = float(F.cosine_similarity(exact - base, wood - base, dim=0))
    print(f"cosine(WoodFisher step, exact Newton step) = {cosine:.4f}")
    assert cosine > 0.9
    assert mean_loss_of(wood, full, data, forget) > mean_loss(full, data, forget)


def mean_loss_of(vector: torch.Tensor, like: nn.Module, data: ImageSet, indices: torch.Tensor) -> float:
    model = nn.Sequential(nn.Flatten(), nn.Linear(like[1].in_features, like[1].out_features))
    torch.nn.utils.vector_to_parameters(vector, model.parameters())
    return mean_loss(model, data, indices)


@pytest.fixture(scope="module")
def mlp(digits, tmp_path_factory):
    config = TrainConfig(dataset="digits", model="mlp", recipe=get_recipe("quick", epochs=4))
    store = ArtifactStore(tmp_path_factory.mktemp("unlearn-store"))
    trained = train_or_load(config, digits, store)
    forget = torch.nonzero(digits.train.labels == 3).flatten()[:40]
    retain = torch.tensor(sorted(set(range(len(digits.train))) - set(forget.tolist())))
    return digits.train, trained, forget, retain, store


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("ga", {"lr": 0.05, "augment": False}),
        ("if", {"alpha": 50.0, "fisher_samples": 256, "augment": False}),
    ],
)
def test_ga_and_if_raise_the_forget_loss(mlp, method, options):
    data, trained, forget, retain, _ = mlp
    after = unlearn(method, trained.model, data, forget, retain, **options)
    assert mean_loss(after.model, data, forget) > mean_loss(trained.model, data, forget) + 0.05
    assert not torch.equal(flat_params(after.model), flat_params(trained.model))


@pytest.mark.parametrize("method", ["rt", "ft"])
def test_rt_and_ft_never_see_a_forget_sample(mlp, monkeypatch, method):
    data, trained, forget, retain, _ = mlp
    seen: list[torch.Tensor] = []
    original = batches.DeviceLoader.__iter__

    def recording(self):
        for batch in original(self):
            seen.append(batch.index.cpu())
            yield batch

    monkeypatch.setattr(batches.DeviceLoader, "__iter__", recording)
    options = (
        {"recipe": get_recipe("quick", epochs=1), "architecture": "mlp"}
        if method == "rt"
        else {"epochs": 1, "augment": False}
    )
    unlearn(method, trained.model, data, forget, retain, **options)
    touched = torch.cat(seen)
    assert len(touched) >= len(retain)
    assert not torch.isin(touched, forget).any()


def test_sisa_unlearning_equals_retraining_the_shard(digits):
    data = digits.train.head(40)
    config = SisaConfig(shards=3, slices=2, recipe=get_recipe("quick", epochs=1), seed=3)
    factory = lambda: new_model(TrainConfig(dataset="digits", model="mlp", recipe=config.recipe), data)  # noqa: E731
    everything = torch.arange(len(data))
    ensemble = train_sisa(factory, data, everything, config)
    shard_of = ensemble.shard_of
    forget = torch.nonzero(shard_of == 1).flatten()[:3]
    retain = everything[~torch.isin(everything, forget)]
    result = unlearn("sisa", ensemble, data, forget, retain)
    reference = train_sisa(factory, data, retain, config)
    for ours, theirs in zip(result.model.members, reference.members, strict=True):
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), name
    assert result.record.details["retrained_shards"] == [1]
    assert 0 < result.record.details["saved_fraction"] < 1
    # the parent ensemble is untouched and still differs in shard 1
    assert not torch.equal(flat_params(ensemble.members[1]), flat_params(result.model.members[1]))
    with pytest.raises(ConfigError, match="SISA ensemble"):
        unlearn("sisa", factory(), data, forget, retain)


def test_certified_noise_matches_eq15_by_hand():
    acc = CertifiedAccountant(c0=2.0, c1=1.0, gamma=0.5)
    zeta = math.exp(-1)  # log(1/zeta) = 1
    # sigma^2 = 9 * 1 / (1 * 4) * (2 + 1 * 0.5 * 4)^2 = 36
    assert acc.sigma(1.0, zeta, 4) == pytest.approx(6.0)
    # sigma^2 = 9 / (4 * 2) * (2 + 0.5 * 2)^2 = 10.125 at eps = 0.5... written out:
    assert acc.sigma(2.0, zeta, 2) == pytest.approx(math.sqrt(9 / (4 * 2) * 3.0**2))
    # 6 is the minimum noise (T* = C0 / (C1 gamma) = 4): exactly one root
    assert acc.min_sigma(1.0, zeta) == pytest.approx(6.0)
    assert acc.steps(1.0, zeta, 6.0) == pytest.approx((4.0,))
    assert acc.steps(1.0, zeta, 5.9) == ()
    with pytest.raises(ConfigError, match="at least 6"):
        acc.integer_steps(1.0, zeta, 5.9)


def test_accountant_round_trip():
    acc = CertifiedAccountant(c0=10.0, c1=1.0, gamma=0.05)
    eps, zeta = 0.8, 1e-5
    for steps in (1, 7, 200, 5000):
        sigma = acc.sigma(eps, zeta, steps)
        roots = acc.steps(eps, zeta, sigma)
        assert len(roots) in (1, 2)
        assert min(abs(r - steps) for r in roots) == pytest.approx(0, abs=1e-6 * steps)
        assert acc.epsilon(sigma, zeta, steps) == pytest.approx(eps)
        for root in roots:
            assert acc.epsilon(sigma, zeta, root) == pytest.approx(eps)


def test_certified_clips_projects_and_records(mlp):
    data, trained, forget, retain, _ = mlp
    c0, c1 = 3.0, 0.5
    result = unlearn("certified", trained.model, data, forget, retain, epsilon=1.0, zeta=1e-3, c0=c0, c1=c1,
                     gamma=0.01, steps=6, batch_size=128)  # fmt: skip
    g = result.record.details["guarantee"]
    assert flat_params(trained.model).norm() > c0  # so the projection had work to do
    assert g["start_norm"] <= c0 + 1e-4
    assert len(g["grad_norms"]) == 6 and max(g["grad_norms"]) <= c1 + 1e-6
    expected = math.sqrt(9 * math.log(1e3) / 6) * (c0 + c1 * 0.01 * 6)
    assert g["sigma"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"zeta": 1.0, "steps": 3}, "zeta must lie in"),
        ({"epsilon": 3 * math.log(1e5), "steps": 3}, "epsilon must lie in"),
        ({"steps": 3, "sigma": 1.0}, "at most one of steps"),
        ({"sigma": 1e-6}, "sigma must be at least"),
    ],
)
def test_certified_refuses_parameters_outside_the_theorem(mlp, options, message):
    data, trained, forget, retain, _ = mlp
    with pytest.raises(ConfigError, match=message):
        unlearn("certified", trained.model, data, forget, retain, **options)


def test_bad_sets_are_refused(mlp):
    data, trained, forget, retain, _ = mlp
    with pytest.raises(ConfigError, match="forget set is empty"):
        unlearn("ga", trained.model, data, [], retain)
    with pytest.raises(ConfigError, match="overlap in 2 samples"):
        unlearn("ga", trained.model, data, forget, torch.cat([retain, forget[:2]]))
    with pytest.raises(ConfigError, match="must lie in"):
        unlearn("ga", trained.model, data, [len(data)], retain)
    with pytest.raises(ConfigError, match="unknown unlearning method 'nope'"):
        unlearn("nope", trained.model, data, forget, retain)


def test_unlearned_artifact_names_its_parent_and_sets(mlp):
    data, trained, forget, retain, store = mlp
    first = unlearn_or_load("ga", trained.artifact, data, forget, retain, store, lr=0.01)
    config = first.artifact.manifest["config"]
    assert config["parent"] == trained.artifact.manifest["config_hash"]
    assert config["method"] == "ga" and config["options"]["lr"] == 0.01
    assert config["forget_size"] == len(forget) and len(config["retain"]) == 16
    assert first.record["forget_size"] == len(forget)
    again = unlearn_or_load("ga", trained.artifact, data, forget, retain, store, lr=0.01)
    assert again.reused
    model, f, r = load_unlearned(again.artifact, data)
    assert torch.equal(f, forget) and torch.equal(r, retain)
    assert torch.equal(flat_params(model), flat_params(first.model))
    with pytest.raises(ConfigError, match="trained on 1257 samples, the data has 50"):
        unlearn_or_load("ga", trained.artifact, data.head(5), [0], [1], store)
    with pytest.raises(ArtifactError, match="not an unlearned-model artifact"):
        load_unlearned(trained.artifact, data)


def test_parent_training_set_checks_the_dataset(mlp, digits):
    _, trained, _, _, store = mlp
    rebuilt, scenario = parent_training_set(trained.artifact, digits, store)
    assert torch.equal(rebuilt.images, digits.train.images) and scenario is None
    renamed, _ = parent_training_set(trained.artifact, dataclasses.replace(digits, name="other"), store)
    assert torch.equal(renamed.images, digits.train.images)  # data identity is content, not a name
    images = digits.train.images.clone()
    images[0, 0, 0, 0] ^= 1
    other = dataclasses.replace(digits, train=ImageSet(images, digits.train.labels, digits.train.classes))
    with pytest.raises(DataError, match="not the data the model was made from"):
        parent_training_set(trained.artifact, other, store)


@pytest.mark.parametrize("architecture", MODELS.names())
def test_rt_starts_from_a_freshly_constructed_model(architecture, monkeypatch):
    """RT's model at step 0 is the constructor's initialization under the RT seed, every
    parameter and buffer (reset_parameters() on the parent missed conv init scales and
    ViT's cls_token/pos_embed)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=generator)
    data = ImageSet(images, torch.arange(20) % 10, tuple(str(c) for c in range(10)))
    parent = fresh_model(architecture, data, seed=123)
    with torch.no_grad():  # a "trained" parent: every parameter and float buffer moved
        for tensor in [*parent.parameters(), *parent.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.37)
    seen = {}

    def capture(model, *args, **kwargs):
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise StopIteration  # step 0 is all this test needs

    monkeypatch.setattr(rt, "train", capture)
    with pytest.raises(StopIteration):
        unlearn("rt", parent, data, [0], list(range(1, 20)), recipe=get_recipe("quick"),
                architecture=architecture, seed=7)  # fmt: skip
    expected = fresh_model(architecture, data, seed=7).state_dict()
    assert seen.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(seen[name], value), f"{architecture}: {name} is not the constructor's value"


def test_rt_refuses_without_the_parents_architecture():
    data = ImageSet(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    with pytest.raises(ConfigError, match="architecture"):
        unlearn("rt", fresh_model("mlp", data, 0), data, [0], [1, 2, 3], recipe=get_recipe("quick"))


def test_certified_runs_with_defaults_at_the_least_noise_eq15_allows():
    config = CertifiedConfig()
    config.check()
    steps, sigma = config.schedule()
    assert steps == round(config.c0 / (config.c1 * config.gamma))
    assert sigma == pytest.approx(config.accountant().min_sigma(config.epsilon, config.zeta), rel=1e-6)


def test_a_diverged_unlearning_stores_nothing(tmp_path):
    """alpha=3e38 (the float32 limit) with damping 1e-30 makes weights infinite: exit 2 with one
    line, no artifact; an infinite or NaN option, or one beyond float32 (1e300), is refused by the
    options' validation."""
    from typer.testing import CliRunner

    from dememo.cli import app
    from dememo.errors import TrainingError

    runner, art = CliRunner(), tmp_path / "art"
    train = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "1", "--train-per-class", "10",
             "--artifacts", str(art), "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    assert runner.invoke(app, train).exit_code == 0
    model = next((art / "model").iterdir())
    unlearn_if = ["unlearn", "if", str(model), "--forget", "class=0", "--artifacts", str(art),
                  "--device", "cpu"]  # fmt: skip
    diverged = runner.invoke(app, [*unlearn_if, "-o", "alpha=3e38", "-o", "damping=1e-30"])
    assert isinstance(diverged.exception, TrainingError), diverged.output
    assert "not saved: tensor" in str(diverged.exception) and "non-finite values" in str(diverged.exception)
    assert "forget" not in diverged.output  # no accuracies of weights that were never stored
    for value in ("Infinity", "nan", "-inf", "1e300"):
        refused = runner.invoke(app, [*unlearn_if, "-o", f"alpha={value}"])
        assert isinstance(refused.exception, ConfigError)
        assert "finite number" in str(refused.exception) or "float32 range" in str(refused.exception)
    assert not (art / "unlearned").exists() or not any((art / "unlearned").iterdir())
    with pytest.raises(ValueError, match="finite number"):
        CertifiedConfig(epsilon=float("inf"))


def recording_loaders(monkeypatch) -> list[tuple[object, list[torch.Tensor]]]:
    """Record every DeviceLoader's augmentation and the images of the batches it gave."""
    loaders: list[tuple[object, list[torch.Tensor]]] = []
    original = batches.DeviceLoader.__iter__

    def recording(self):
        images: list[torch.Tensor] = []
        loaders.append((self.augment, images))
        for batch in original(self):
            images.append(batch.images.cpu())
            yield batch

    monkeypatch.setattr(batches.DeviceLoader, "__iter__", recording)
    return loaders


def test_ft_with_augmentation_sees_other_batches(mlp, monkeypatch):
    data, trained, forget, retain, _ = mlp
    loaders = recording_loaders(monkeypatch)
    crop_flip = Augment(crop_padding=2, flip=True)
    plain = unlearn("ft", trained.model, data, forget, retain, epochs=1, augment=False)
    augmented = unlearn("ft", trained.model, data, forget, retain, epochs=1, augment=crop_flip)
    (plain_augment, plain_images), (used_augment, augmented_images) = loaders
    assert plain_augment == Augment() and used_augment == crop_flip
    assert [len(b) for b in plain_images] == [len(b) for b in augmented_images]
    assert not torch.equal(torch.cat(plain_images), torch.cat(augmented_images))
    assert not torch.equal(flat_params(plain.model), flat_params(augmented.model))
    assert augmented.record.options["augment"] == crop_flip.model_dump(mode="json")
    assert plain.record.options["augment"] is False


def test_unlearning_augments_like_the_parent_recipe(digits, mlp, tmp_path, monkeypatch):
    data, _, forget, retain, _ = mlp
    crop_flip = Augment(crop_padding=1, flip=True)
    store = ArtifactStore(tmp_path)
    recipe = get_recipe("quick", epochs=1, augment=crop_flip)
    parent = train_or_load(TrainConfig(dataset="digits", model="mlp", recipe=recipe), digits, store)
    loaders = recording_loaders(monkeypatch)
    options = {"ft": {"epochs": 1}, "ga": {"epochs": 1}, "if": {"fisher_samples": 32}}
    for method, extra in options.items():
        done = unlearn_or_load(method, parent.artifact, data, forget, retain, store, **extra)
        assert done.artifact.manifest["config"]["options"]["augment"] == crop_flip.model_dump(mode="json")
    assert {augment for augment, _ in loaders} == {crop_flip}  # every IF gradient too
    explicit = unlearn_or_load(
        "ft", parent.artifact, data, forget, retain, store, epochs=1, augment=crop_flip
    )
    assert explicit.reused  # the default names the same artifact as the parent's Augment spelled out
    plain = unlearn_or_load("ft", parent.artifact, data, forget, retain, store, epochs=1, augment=False)
    assert not plain.reused and loaders[-1][0] == Augment()
    # a parent trained without augmentation: the default is none, stored as false
    _, unaugmented, *_ = mlp
    assert not unaugmented.artifact.manifest["config"]["recipe"]["augment"]["flip"]
    done = unlearn_or_load("ga", unaugmented.artifact, data, forget, retain, store, epochs=1)
    assert done.artifact.manifest["config"]["options"]["augment"] is False


def test_direct_unlearning_needs_an_explicit_augmentation(mlp):
    data, trained, forget, retain, _ = mlp
    for method in ("ft", "ga", "if"):
        with pytest.raises(ConfigError, match=f"{method}: augment=true means the parent recipe's"):
            unlearn(method, trained.model, data, forget, retain)


def test_batched_exact_hessian_equals_the_full_batch_hessian(logistic):
    data, _, retain, full, _ = logistic
    model = full.eval()
    d = sum(p.numel() for p in model.parameters())
    params = trainable(model)
    x = data.images[retain].float() / 255
    y = data.labels[retain]

    def mean_retain_loss(theta: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, unflatten(theta, params), (x,)), y)

    whole = hessian(mean_retain_loss)(flat(params)).double()
    plan = dataclasses.replace(exact_plan(d, 4096, len(retain), 64), batch=97, tangents=100)
    batched = exact_hessian(model, data, retain, plan, torch.device("cpu"))
    assert batched.shape == (d, d) and batched.dtype == torch.float64
    torch.testing.assert_close(batched, whole, rtol=1e-4, atol=1e-6)
    # the estimate: 2 d^2 x 8 B plus one batch, whatever the number of samples
    assert exact_plan(d, 4096, 10**6, 64) == exact_plan(d, 4096, 1000, 64)
    assert exact_plan(d, 4096, 1000, 64).bytes == 16 * d * d + exact_plan(d, 4096, 1000, 64).batch_bytes


def test_exact_inverse_needs_damping_and_memory(mlp):
    data, trained, forget, retain, _ = mlp
    assert make_config("if").damping == 1.0  # WoodFisher's identity start
    with pytest.raises(ConfigError, match="inverse=exact needs an explicit damping"):
        unlearn("if", trained.model, data, forget, retain, inverse="exact", augment=False)
    # the MLP's 19,210 parameters need 2 x 19210^2 x 8 B = 5.5 GiB for the Hessian and its factors
    with pytest.raises(ConfigError, match=r"needs about 5\.\d+ GiB for 19210 parameters .* 4 GiB limit"):
        unlearn("if", trained.model, data, forget, retain, inverse="exact", damping=5e-4, augment=False)


EXACT_IN_A_SUBPROCESS = """
import resource, sys, torch
from torch import nn
from dememo.data import load_dataset
from dememo.unlearn import unlearn
torch.manual_seed(0)
data = load_dataset("digits").train
model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(6, 10))
forget = torch.nonzero(data.labels == 3).flatten()
retain = torch.nonzero(data.labels != 3).flatten()[:1000]
result = unlearn("if", model, data, forget, retain, inverse="exact", damping=5e-4, augment=False)
assert torch.isfinite(torch.tensor(result.record.details["step_norm"]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
print(peak, result.record.details["hessian_bytes_estimate"])
"""


def test_exact_inverse_of_a_conv_net_on_1000_samples_stays_under_4_gib():
    """A 460-parameter conv net on 1,000 retain samples: the single-call Hessian this replaced
    grew with d x N x the activations; the batched one stays near its estimate (d^2 terms)."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", EXACT_IN_A_SUBPROCESS], capture_output=True, text=True,
                          env=env, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    peak, estimate = map(int, done.stdout.split()[-2:])
    print(f"peak RSS {peak / 2**20:.0f} MiB, estimate {estimate / 2**20:.0f} MiB")
    assert peak < 4 << 30 and estimate < 4 << 30
