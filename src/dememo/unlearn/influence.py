"""IF: influence unlearning, one Newton-like step that removes the forget set (Izzo et
al. 2021; Koh & Liang 2017), with the inverse Hessian replaced by a WoodFisher
inverse of the damped empirical Fisher of retain-set gradients (Singh & Alistarh 2020).

The step is theta + alpha * F^-1 v with v = (n_f / n) (mean forget gradient - mean
retain gradient). At a stationary point of the training loss v equals minus the
retain objective's gradient, so alpha = 1 with the exact retain Hessian is the Newton
step to the retrained model, and the step raises the forget loss. (The paper's Eq. 8
prints a minus sign; FACTS.md 1.3 explains why that is a slip.)

F = damping * I + (1/m) sum_i g_i g_i^T over m retain samples. WoodFisher builds F^-1
by m rank-1 Sherman-Morrison updates; this computes the same inverse in one Woodbury
solve in the m x m Gram space. Per-sample gradients come from torch.func (vmap over
grad). Gradients are taken in eval mode (BatchNorm uses its running statistics).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call, grad, hessian, vmap

from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.runtime import MEMORY_FORMAT
from dememo.unlearn.base import UnlearnConfig, Unlearner, Work, register_unlearner

MAX_FISHER_BYTES = 4 << 30
MAX_EXACT_PARAMS = 20_000


class InfluenceConfig(UnlearnConfig):
    alpha: float = Field(2.0, gt=0)
    inverse: Literal["woodfisher", "exact"] = "woodfisher"  # exact: the full Hessian (small models)
    fisher_samples: int = Field(1024, ge=1)  # retain samples whose gradients form F
    damping: float = Field(1.0, gt=0)  # the identity start of the public WoodFisher code
    chunk: int = Field(64, ge=1)  # samples per vmap call


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def flat(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def unflatten(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def per_sample_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, d) loss gradients, one row per sample, with torch.func (vmap over grad)."""
    params = trainable(model)
    buffers = dict(model.named_buffers())

    def sample_loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, images, labels)
    return torch.cat([g.flatten(1) for g in grads.values()], 1)


def mean_gradient(model: nn.Module, data: ImageSet, indices: torch.Tensor, batch_size: int,
                  device: torch.device) -> torch.Tensor:  # fmt: skip
    """Flat gradient of the mean loss over ``data[indices]`` (eval mode)."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    for batch in DeviceLoader(data, batch_size, device, indices=indices, shuffle=False):
        loss = F.cross_entropy(model(batch.images.contiguous(memory_format=MEMORY_FORMAT)), batch.labels,
                               reduction="sum")  # fmt: skip
        for acc, g in zip(total, torch.autograd.grad(loss, params), strict=True):
            acc += g
    return torch.cat([t.reshape(-1) for t in total]) / len(indices)


def woodfisher_solve(gradients: torch.Tensor, vector: torch.Tensor, damping: float) -> torch.Tensor:
    """(damping I + G^T G / m)^-1 v for the (m, d) gradient rows G, by Woodbury (float64)."""
    g = gradients.double()
    m = g.shape[0]
    gram = g @ g.T + m * damping * torch.eye(m, dtype=g.dtype, device=g.device)
    inner = torch.linalg.solve(gram, g @ vector.double())
    return ((vector.double() - g.T @ inner) / damping).to(vector.dtype)


def exact_solve(model: nn.Module, data: ImageSet, retain: torch.Tensor, vector: torch.Tensor,
                damping: float, device: torch.device) -> torch.Tensor:  # fmt: skip
    """(H_r + damping I)^-1 v with the exact Hessian of the mean retain loss."""
    params = trainable(model)
    buffers = dict(model.named_buffers())
    images = data.images[retain].to(device).float().div_(255)
    labels = data.labels[retain].to(device)

    def retain_loss(theta: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (unflatten(theta, params), buffers), (images,))
        return F.cross_entropy(logits, labels)

    h = hessian(retain_loss)(flat(params)).double()
    h += damping * torch.eye(len(h), dtype=h.dtype, device=h.device)
    return torch.linalg.solve(h, vector.double()).to(vector.dtype)


def influence_direction(
    model: nn.Module,
    data: ImageSet,
    forget: torch.Tensor,
    retain: torch.Tensor,
    config: InfluenceConfig,
    device: torch.device,
) -> tuple[torch.Tensor, dict]:
    """The flat update F^-1 v (before alpha) and facts about it; ``model`` must be in eval mode."""
    n = len(forget) + len(retain)
    v = (len(forget) / n) * (
        mean_gradient(model, data, forget, config.batch_size, device)
        - mean_gradient(model, data, retain, config.batch_size, device)
    )
    if config.inverse == "exact":
        if v.numel() > MAX_EXACT_PARAMS:
            raise ConfigError(f"if: inverse=exact needs at most {MAX_EXACT_PARAMS} parameters, "
                              f"this model has {v.numel()}; use inverse=woodfisher")  # fmt: skip
        return exact_solve(model, data, retain, v, config.damping, device), {"hessian_samples": len(retain)}
    m = min(config.fisher_samples, len(retain))
    if m * v.numel() * 4 > MAX_FISHER_BYTES:
        raise ConfigError(f"if: {m} per-sample gradients of {v.numel()} parameters exceed "
                          f"{MAX_FISHER_BYTES >> 30} GiB; lower fisher_samples")  # fmt: skip
    generator = torch.Generator().manual_seed(config.seed)
    chosen = retain[torch.randperm(len(retain), generator=generator)[:m]]
    rows = []
    for batch in DeviceLoader(data, config.chunk, device, indices=chosen, shuffle=False):
        rows.append(per_sample_gradients(model, batch.images, batch.labels))
    return woodfisher_solve(torch.cat(rows), v, config.damping), {"fisher_samples": m}


@register_unlearner
class Influence(Unlearner):
    name = "if"
    description = "one WoodFisher influence step that removes the forget set (the scale is alpha)"
    Config = InfluenceConfig
    scale_option = "alpha"
    trains_on_retain = True

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        if len(retain) == 0:
            raise ConfigError("if: the retain set is empty")
        c = self.config
        model.to(device=self.device, memory_format=MEMORY_FORMAT).eval()
        direction, facts = influence_direction(model, data, forget, retain, c, self.device)
        with torch.no_grad():
            step = unflatten(c.alpha * direction, trainable(model))
            for name, p in model.named_parameters():
                if name in step:
                    p.add_(step[name])
        used = facts.get("fisher_samples", facts.get("hessian_samples", 0))
        details = {**facts, "step_norm": float(c.alpha * direction.norm())}
        return Work(1, len(forget) + len(retain) + used, ("forget", "retain"), details)
