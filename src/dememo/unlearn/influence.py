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

``inverse=exact`` solves with the exact Hessian of the mean retain loss plus damping
(the L2 weight of the training objective, which must be given), accumulated over
batches of forward-over-reverse Hessian-vector products; its memory is estimated up
front (``exact_plan``) and refused above MAX_EXACT_BYTES.

Augmentation (``augment``, default: the parent recipe's): every gradient, v's as well
as the Fisher rows (and the exact Hessian), is taken on one augmented view per sample
drawn with the seed. This follows the official code the paper very probably reused
(OPTML-Group Unlearn-Sparse ``Wfisher``: its forget and retain loaders keep the training
transforms); an assumption, since the paper does not say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from dememo.data.augment import Augment
from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.progress import make_progress
from dememo.runtime import MEMORY_FORMAT
from dememo.unlearn.base import AugmentingConfig, Unlearner, Work, register_unlearner

MAX_FISHER_BYTES = 4 << 30
MAX_EXACT_BYTES = 4 << 30  # exact inverse: the Hessian, its LU factors and one batch's working memory
EXACT_BATCH_BYTES = 256 << 20  # working memory one batch of Hessian-vector products aims for
AD_COPIES = 6  # activation copies per tangent and sample in forward-over-reverse (an estimate)
WOODFISHER_DAMPING = 1.0  # the identity start of the public WoodFisher code


class InfluenceConfig(AugmentingConfig):
    alpha: float = Field(2.0, gt=0)
    inverse: Literal["woodfisher", "exact"] = "woodfisher"  # exact: the full Hessian (small models)
    fisher_samples: int = Field(1024, ge=1)  # retain samples whose gradients form F
    damping: float | None = Field(None, gt=0)  # woodfisher: 1 when unset; exact: required
    chunk: int = Field(64, ge=1)  # samples per vmap call (Fisher rows; the exact Hessian's batches)

    @model_validator(mode="before")
    @classmethod
    def _woodfisher_damping(cls, data: Any) -> Any:
        woodfisher = isinstance(data, dict) and data.get("inverse", "woodfisher") == "woodfisher"
        if woodfisher and data.get("damping") is None:
            return {**data, "damping": WOODFISHER_DAMPING}
        return data

    def check(self) -> None:
        if self.inverse == "exact" and self.damping is None:
            raise ConfigError(
                "if: inverse=exact needs an explicit damping, the L2 weight of the training objective "
                "(e.g. its weight decay, damping=5e-4); WoodFisher's default 1 would shrink the Newton step"
            )


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


def mean_gradient(
    model: nn.Module,
    data: ImageSet,
    indices: torch.Tensor,
    batch_size: int,
    device: torch.device,
    augment: Augment | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Flat gradient of the mean loss over ``data[indices]`` (eval mode; one augmented view
    per sample with ``augment``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    total = [torch.zeros_like(p) for p in params]
    loader = DeviceLoader(
        data, batch_size, device, indices=indices, shuffle=False, augment=augment, seed=seed
    )
    for batch in loader:
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


def activation_bytes(model: nn.Module, images: torch.Tensor) -> int:
    """Bytes of the input and of every leaf module's output for one sample (one forward pass)."""
    total = images[:1].numel() * images.element_size()

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total


@dataclass(frozen=True)
class ExactPlan:
    """How the exact Hessian is accumulated and what it is estimated to need."""

    params: int  # d
    batch: int  # retain samples per batch
    tangents: int  # Hessian-vector products per vmap call
    batch_bytes: int  # working memory of one call
    bytes: int  # the estimate: 2 d^2 x 8 B + batch_bytes

    def describe(self) -> str:
        return (
            f"about {self.bytes / 2**30:.2f} GiB for {self.params} parameters (2 x d^2 x 8 B for the "
            f"float64 Hessian and its LU factors, plus {self.batch_bytes / 2**20:.0f} MiB per batch)"
        )


def exact_plan(params: int, sample_bytes: int, samples: int, chunk: int) -> ExactPlan:
    """Batch sizes and memory estimate of the exact Hessian: the float64 Hessian and the
    copy ``torch.linalg.solve`` factorizes (2 d^2 x 8 B), plus one vmap call over k tangents
    and b samples: k b AD_COPIES x (activation bytes per sample) for forward-over-reverse
    and 3 k d x 8 B for the basis vectors and the Hessian rows they give. k is the largest
    that keeps one call within EXACT_BATCH_BYTES (at least 1)."""
    batch = max(1, min(chunk, samples))
    per_tangent = batch * AD_COPIES * sample_bytes + 3 * 8 * params
    tangents = max(1, min(params, EXACT_BATCH_BYTES // per_tangent))
    batch_bytes = tangents * per_tangent
    return ExactPlan(params, batch, tangents, batch_bytes, 2 * 8 * params * params + batch_bytes)


def add_hessian_rows(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, total: torch.Tensor,
                     tangents: int) -> None:  # fmt: skip
    """total += the Hessian of the summed loss on this batch, ``tangents`` rows per vmap call
    of forward-over-reverse Hessian-vector products (H e_j is row j: H is symmetric)."""
    params = trainable(model)
    buffers = dict(model.named_buffers())
    theta = flat(params)
    d = theta.numel()

    def batch_loss(t: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (unflatten(t, params), buffers), (images,))
        return F.cross_entropy(logits, labels, reduction="sum")

    gradient = grad(batch_loss)
    hvp = vmap(lambda v: jvp(gradient, (theta,), (v,))[1])
    for start in range(0, d, tangents):
        rows = torch.arange(start, min(start + tangents, d), device=theta.device)
        basis = torch.zeros(len(rows), d, dtype=theta.dtype, device=theta.device)
        basis[torch.arange(len(rows), device=theta.device), rows] = 1
        total[start : start + len(rows)] += hvp(basis).double()


def exact_hessian(
    model: nn.Module,
    data: ImageSet,
    retain: torch.Tensor,
    plan: ExactPlan,
    device: torch.device,
    augment: Augment | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """The float64 Hessian of the mean retain loss, summed over batches of ``plan.batch``."""
    total = torch.zeros(plan.params, plan.params, dtype=torch.float64, device=device)
    loader = DeviceLoader(data, plan.batch, device, indices=retain, shuffle=False, augment=augment, seed=seed)
    with make_progress() as bar:
        task = bar.add_task("if: exact Hessian", total=len(loader), status=f"{plan.params} parameters")
        for batch in loader:
            add_hessian_rows(model, batch.images, batch.labels, total, plan.tangents)
            bar.advance(task)
    return total.div_(len(retain))


def exact_solve(
    model: nn.Module,
    data: ImageSet,
    retain: torch.Tensor,
    vector: torch.Tensor,
    damping: float,
    plan: ExactPlan,
    device: torch.device,
    augment: Augment | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """(H_r + damping I)^-1 v with the exact Hessian of the mean retain loss."""
    h = exact_hessian(model, data, retain, plan, device, augment, seed)
    h.diagonal().add_(damping)
    return torch.linalg.solve(h, vector.double()).to(vector.dtype)


def plan_exact(model: nn.Module, data: ImageSet, retain: torch.Tensor, config: InfluenceConfig,
               device: torch.device) -> ExactPlan:  # fmt: skip
    """The exact inverse's plan; ConfigError when its estimate exceeds MAX_EXACT_BYTES."""
    d = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sample = data.images[retain[:1]].to(device).float().div_(255)
    plan = exact_plan(d, activation_bytes(model, sample), len(retain), config.chunk)
    if plan.bytes > MAX_EXACT_BYTES:
        raise ConfigError(f"if: inverse=exact needs {plan.describe()}, over the {MAX_EXACT_BYTES >> 30} GiB "
                          "limit; use inverse=woodfisher")  # fmt: skip
    return plan


def influence_direction(
    model: nn.Module,
    data: ImageSet,
    forget: torch.Tensor,
    retain: torch.Tensor,
    config: InfluenceConfig,
    device: torch.device,
) -> tuple[torch.Tensor, dict]:
    """The flat update F^-1 v (before alpha) and facts about it; ``model`` must be in eval mode."""
    augment, seed = config.augmentation("if"), config.seed
    plan = plan_exact(model, data, retain, config, device) if config.inverse == "exact" else None
    n = len(forget) + len(retain)
    v = (len(forget) / n) * (
        mean_gradient(model, data, forget, config.batch_size, device, augment, seed)
        - mean_gradient(model, data, retain, config.batch_size, device, augment, seed + 1)
    )
    if plan is not None:
        direction = exact_solve(model, data, retain, v, config.damping, plan, device, augment, seed + 2)
        return direction, {"hessian_samples": len(retain), "hessian_bytes_estimate": plan.bytes}
    m = min(config.fisher_samples, len(retain))
    if m * v.numel() * 4 > MAX_FISHER_BYTES:
        raise ConfigError(f"if: {m} per-sample gradients of {v.numel()} parameters exceed "
                          f"{MAX_FISHER_BYTES >> 30} GiB; lower fisher_samples")  # fmt: skip
    generator = torch.Generator().manual_seed(config.seed)
    chosen = retain[torch.randperm(len(retain), generator=generator)[:m]]
    rows = []
    loader = DeviceLoader(
        data, config.chunk, device, indices=chosen, shuffle=False, augment=augment, seed=seed + 2
    )
    for batch in loader:
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
