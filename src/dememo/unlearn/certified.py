"""Certified noisy fine-tuning (Koloskova et al., ICML 2025; the SoK paper's App. C.2).

theta_0 = Pi_C0(theta_hat), theta_{t+1} = theta_t - gamma Pi_C1(g_t) + N(0, sigma^2 I),
with sigma from Eq. 15 (see ``accountant``). Then, optionally, noise-free fine-tuning
on the retain set (post-processing keeps the guarantee).

Choices where the theorem leaves room: g_t is the mean gradient of a mini-batch of the
retain set, clipped as a whole to norm C1 (not per sample); the noise is added to the
weights, not scaled by gamma; projection and noise cover the trainable parameters.
BatchNorm running statistics are not parameters: they are re-estimated from retain
batches during the noisy steps (train mode), and the guarantee does not cover them.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.unlearn.accountant import CertifiedAccountant, check_privacy
from dememo.unlearn.base import UnlearnConfig, Unlearner, Work, register_unlearner
from dememo.unlearn.loops import sgd_steps, steps_for_epochs


class CertifiedConfig(UnlearnConfig):
    epsilon: float = Field(1.0, gt=0)
    zeta: float = Field(1e-5, gt=0)
    c0: float = Field(50.0, gt=0)  # radius of the weight ball the start is projected onto
    c1: float = Field(1.0, gt=0)  # gradient clipping norm
    gamma: float = Field(0.01, gt=0)  # step size
    steps: int | None = Field(None, ge=1)  # T; with sigma unset, sigma follows from Eq. 15
    sigma: float | None = Field(None, gt=0)  # with steps unset, T is the fewest that certify
    # Neither set: T = C0 / (C1 gamma), the T at which Eq. 15 needs the least noise.
    finetune_epochs: int = Field(0, ge=0)  # noise-free fine-tuning afterwards
    finetune_lr: float = Field(0.01, gt=0)

    def check(self) -> None:
        check_privacy(self.epsilon, self.zeta)
        if self.steps is not None and self.sigma is not None:
            raise ConfigError("certified: give at most one of steps (T) and sigma; Eq. 15 sets the other")
        try:  # the schedule now, not after the fine-tuning: e.g. epsilon 1e-300 squares to 0
            steps, sigma = self.schedule()
        except (ZeroDivisionError, OverflowError, ValueError):
            steps, sigma = 0, math.inf
        if not (math.isfinite(sigma) and sigma > 0 and 1 <= steps < 2**63):
            raise ConfigError(f"certified: epsilon {self.epsilon:g}, zeta {self.zeta:g}, C0 {self.c0:g}, "
                              f"C1 {self.c1:g}, gamma {self.gamma:g} give no usable noise schedule "
                              f"(T {steps}, sigma {sigma:g}); use a larger epsilon")  # fmt: skip

    def accountant(self) -> CertifiedAccountant:
        return CertifiedAccountant(self.c0, self.c1, self.gamma)

    def schedule(self) -> tuple[int, float]:
        """(T, sigma) satisfying Eq. 15."""
        acc = self.accountant()
        if self.sigma is None:
            steps = self.steps or max(1, round(self.c0 / (self.c1 * self.gamma)))
            return steps, acc.sigma(self.epsilon, self.zeta, steps)
        steps = acc.integer_steps(self.epsilon, self.zeta, self.sigma)
        return steps, self.sigma


def parameter_norm(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((p.detach() ** 2).sum() for p in params))


@register_unlearner
class CertifiedFineTune(Unlearner):
    name = "certified"
    description = "certified noisy fine-tuning with (epsilon, zeta) from Eq. 15 (Koloskova et al. 2025)"
    Config = CertifiedConfig
    trains_on_retain = True

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        if len(retain) == 0:
            raise ConfigError("certified: the retain set is empty")
        c = self.config
        steps, sigma = c.schedule()
        model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        generator = torch.Generator(device=self.device).manual_seed(c.seed)
        with torch.no_grad():
            scale = min(1.0, c.c0 / float(parameter_norm(params)))
            for p in params:
                p.mul_(scale)
        start_norm = float(parameter_norm(params))
        grad_norms: list[float] = []

        def clip() -> None:
            norm = float(parameter_norm([p.grad for p in params]))
            factor = min(1.0, c.c1 / norm) if norm > 0 else 1.0
            for p in params:
                p.grad.mul_(factor)
            grad_norms.append(norm * factor)

        def add_noise() -> None:
            with torch.no_grad():
                for p in params:
                    p.add_(torch.randn(p.shape, generator=generator, device=p.device) * sigma)

        samples = sgd_steps(model, data, retain, steps=steps, lr=c.gamma, batch_size=c.batch_size,
                            seed=c.seed, device=self.device, precision=self.precision,
                            after_backward=clip, after_step=add_noise, description="certified")  # fmt: skip
        total_steps = steps
        if c.finetune_epochs:
            extra = steps_for_epochs(len(retain), c.batch_size, c.finetune_epochs)
            samples += sgd_steps(model, data, retain, steps=extra, lr=c.finetune_lr, batch_size=c.batch_size,
                                 momentum=0.9, weight_decay=5e-4, seed=c.seed + 1, device=self.device,
                                 precision=self.precision, description="certified: fine-tuning")  # fmt: skip
            total_steps += extra
        guarantee = {"epsilon": c.epsilon, "zeta": c.zeta, "sigma": sigma, "T": steps, "C0": c.c0,
                     "C1": c.c1, "gamma": c.gamma, "start_norm": start_norm,
                     "max_grad_norm": max(grad_norms), "grad_norms": grad_norms}  # fmt: skip
        return Work(total_steps, samples, ("retain",), {"guarantee": guarantee})
