"""Every registered model builds for any channel count, size and class count."""

from __future__ import annotations

import pytest
import torch

from dememo.audit.montecarlo import noisy_metric
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.models import MODELS, build_model, fit_from_data, flip_evaluated
from dememo.models.architectures import vit_patch_size
from dememo.train import predict_logits


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize(("channels", "size", "classes"), [(3, (32, 32), 10), (1, (28, 28), 7)])
def test_forward_shape(name, channels, size, classes):
    model = build_model(name, channels, classes, size).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, *size))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def test_normalization_is_the_first_layer():
    model = build_model("tinycnn", 3, 10, (8, 8), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    x = torch.full((1, 3, 1, 1), 0.5)
    assert torch.allclose(model[0](x).flatten(), torch.tensor([0.0, 0.5, 1.0]))


def test_cifar_stems_keep_resolution():
    resnet = build_model("resnet18", 3, 10, (32, 32))[1]
    assert resnet.conv1.stride == (1, 1) and isinstance(resnet.maxpool, torch.nn.Identity)
    assert vit_patch_size((32, 32)) == 4 and vit_patch_size((28, 28)) == 2


def test_bad_model_arguments_are_named():
    with pytest.raises(ConfigError, match="unknown model 'resnet50'.*resnet18"):
        build_model("resnet50", 3, 10, (32, 32))
    with pytest.raises(ConfigError, match="3 values"):
        build_model("tinycnn", 3, 10, (32, 32), mean=(0.5,), std=(0.5,))


def test_airbench_whitening_is_fitted_once_from_data_and_whitens_patches():
    torch.manual_seed(0)
    model = build_model("airbench", 3, 10, (32, 32))
    whiten = model[1].whiten
    x = torch.rand(64, 3, 32, 32)
    x[:, 1] = 0.9 * x[:, 0] + 0.1 * x[:, 1]  # correlated channels
    before = whiten.weight.clone()
    fit_from_data(model, x)
    assert bool(whiten.fitted) and not torch.equal(whiten.weight, before)
    out = torch.nn.functional.conv2d(model[0](x), whiten.weight)
    flat = out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])
    second = torch.diag(flat.T @ flat / len(flat))
    assert torch.allclose(second[:6], torch.ones(6), atol=0.01)  # the strongest directions are whitened
    assert torch.equal(whiten.weight[:12], -whiten.weight[12:])
    fitted = whiten.weight.clone()
    fit_from_data(model, torch.rand(8, 3, 32, 32))  # fitted once: later data changes nothing
    assert torch.equal(whiten.weight, fitted)
    assert not any(p is whiten.weight for p in model.parameters())  # fixed filters, trained bias


def test_airbench_is_evaluated_on_each_image_and_its_mirror():
    torch.manual_seed(0)
    model = build_model("airbench", 3, 10, (32, 32)).eval()
    data = ImageSet(
        torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8), torch.arange(6), tuple("abcdef")
    )
    x = data.images.float() / 255
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
    assert flip_evaluated(model) and not flip_evaluated(build_model("fastnet", 3, 10, (32, 32)))
    assert torch.allclose(predict_logits(model, data), expected, atol=1e-5)
    noisy = noisy_metric(model, data, sigma=1e-9, n=1, metric="accuracy")
    assert float(noisy[0]) == pytest.approx(float((expected.argmax(1) == data.labels).float().mean()))
