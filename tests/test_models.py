"""Every registered model builds for any channel count, size and class count."""

from __future__ import annotations

import pytest
import torch

from dememo.errors import ConfigError
from dememo.models import MODELS, build_model
from dememo.models.architectures import vit_patch_size


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
