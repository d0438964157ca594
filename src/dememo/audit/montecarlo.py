"""Metrics of many noisy weight samples, evaluated in batches with torch.func.

``noisy_metric`` draws K weight samples theta_hat + kappa, kappa ~ N(0, sigma^2 I)
on every trainable parameter (buffers such as BatchNorm statistics and the input
normalization stay fixed; a model evaluated with a test-time flip averages each image
with its mirror, as ``predict_logits`` does), and runs all K of a chunk in one vmapped forward pass
per data batch. ``loop_metric`` is the straightforward baseline: the same noise,
one model at a time (benchmarks/mc_batched.py compares them).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, vmap

from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.models import flip_evaluated
from dememo.registry import Registry
from dememo.train import predict_logits

# A metric maps logits (K, B, C) and labels (B,) to per-sample sums (K,); the value is sum / N.
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METRICS: Registry[Metric] = Registry("metric")


@METRICS.register("accuracy")
def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == labels).sum(-1).double()


@METRICS.register("confidence")
def _confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits.double(), -1)
    return probs.gather(-1, labels.expand(*probs.shape[:-1]).unsqueeze(-1)).squeeze(-1).sum(-1)


def evaluated(
    forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, flip: bool
) -> torch.Tensor:
    """``forward(images)``, or with ``flip`` the mean of it and of the mirrored images' logits."""
    logits = forward(images)
    return (logits + forward(images.flip(3))) / 2 if flip else logits


@torch.no_grad()
def metric_value(model: nn.Module, data: ImageSet, metric: str = "accuracy",
                 device: torch.device | str = "cpu") -> float:  # fmt: skip
    """The metric of the unperturbed model."""
    logits = predict_logits(model, data, device=device)
    return float(METRICS.get(metric)(logits.unsqueeze(0), data.labels.to(logits.device))[0]) / len(data)


def noise_chunks(
    model: nn.Module, sigma: float, n: int, chunk: int, seed: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Stacked noise {name: (k, *shape)} for n samples in chunks; seeded, the same for a seed."""
    if sigma <= 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    if n < 1 or chunk < 1:
        raise ConfigError(f"need at least one sample and a chunk size >= 1 (got {n}, {chunk})")
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    generator = torch.Generator(device=named[0][1].device).manual_seed(seed)
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        yield {name: sigma * torch.randn((k, *p.shape), generator=generator, device=p.device,
                                         dtype=p.dtype) for name, p in named}  # fmt: skip


@torch.no_grad()
def noisy_metric(
    model: nn.Module,
    data: ImageSet,
    *,
    sigma: float,
    n: int,
    metric: str = "accuracy",
    chunk: int = 16,
    batch_size: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The metric on ``data`` for ``n`` noisy copies of ``model`` (float64, shape (n,))."""
    score = METRICS.get(metric)
    device = torch.device(device)
    model = model.to(device).eval()
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    fixed = {k: b for k, b in model.named_buffers()}
    flip = flip_evaluated(model)

    def forward(shifted: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        return evaluated(lambda x: functional_call(model, {**shifted, **fixed}, (x,)), images, flip)

    batched = vmap(forward, in_dims=(0, None))
    loader = DeviceLoader(data, batch_size, device, shuffle=False)
    values = []
    with warnings.catch_warnings():
        # functorch falls back to a loop for adaptive pooling's as_strided_ and says so on every
        # call; the result is exact (tests/test_audit_certify.py), the message is noise to a user
        warnings.filterwarnings("ignore", message=".*batching rule for aten::as_strided_.*")
        for noise in noise_chunks(model, sigma, n, chunk, seed):
            shifted = {k: params[k] + noise[k] for k in params}
            total = torch.zeros(next(iter(noise.values())).shape[0], dtype=torch.float64, device=device)
            for batch in loader:
                total += score(batched(shifted, batch.images), batch.labels)
            values.append(total / len(data))
    return torch.cat(values).cpu()


@torch.no_grad()
def loop_metric(
    model: nn.Module,
    data: ImageSet,
    *,
    sigma: float,
    n: int,
    metric: str = "accuracy",
    chunk: int = 16,
    batch_size: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``noisy_metric``'s baseline: the same noise samples, one model at a time."""
    score = METRICS.get(metric)
    device = torch.device(device)
    model = model.to(device).eval()
    copy_ = copy.deepcopy(model)
    params = dict(copy_.named_parameters())
    loader = DeviceLoader(data, batch_size, device, shuffle=False)
    values = []
    for noise in noise_chunks(model, sigma, n, chunk, seed):
        for i in range(next(iter(noise.values())).shape[0]):
            for name, p in model.named_parameters():
                if name in noise:
                    params[name].copy_(p + noise[name][i])
            total = torch.zeros((), dtype=torch.float64, device=device)
            for batch in loader:
                logits = evaluated(copy_, batch.images, flip_evaluated(model))
                total += score(logits.unsqueeze(0), batch.labels)[0]
            values.append(float(total) / len(data))
    return torch.tensor(values, dtype=torch.float64)
