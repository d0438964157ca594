"""PUE: provably unlearnable examples (Wang et al., NDSS 2025).

Class-wise error-minimizing noise made robust to Gaussian weight perturbations.
Until the surrogate first exceeds ``robust_after_accuracy`` on the perturbed data
the loop is plain UE-c. After that, for every sigma level 0, step, ..., sigma_max:
- the surrogate takes one SGD step on the loss averaged over ``train_draws``
  weight draws theta + N(0, sigma^2) (all parameters, not BN running statistics);
- the noise takes one signed step on the input gradient averaged over
  ``noise_draws`` weight draws.
Defaults are those of the official make_pue.sh (NeuralSec/certified-data-learnability):
sigma_max 0.25, step 0.05, 100 / 10 draws, 20 surrogate steps per round, stop at
90% accuracy on the 20% subset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dememo.protect.base import register_protector
from dememo.protect.error_min import ClassWiseConfig, ErrorMinimizing
from dememo.protect.pixel_pgd import pgd
from dememo.runtime import autocast


class PUEConfig(ClassWiseConfig):
    train_steps: int = 20
    stop_accuracy: float = 0.9
    sigma_max: float = 0.25
    sigma_step: float = 0.05
    train_draws: int = 100
    noise_draws: int = 10
    robust_after_accuracy: float = 0.5


@register_protector
class ProvablyUnlearnable(ErrorMinimizing):
    name = "pue"
    description = "class-wise error-minimizing noise robust to weight perturbations (Wang et al. 2025)"
    Config = PUEConfig
    class_wise = True

    def _sigmas(self) -> list[float]:
        cfg = self.config
        return [cfg.sigma_step * j for j in range(round(cfg.sigma_max / cfg.sigma_step) + 1)]

    def _robust(self, history: list[float]) -> bool:
        return any(acc > self.config.robust_after_accuracy for acc in history)

    def _averaged_loss(self, model: nn.Module, inputs, targets, sigma: float, draws: int) -> torch.Tensor:
        """Cross-entropy averaged over ``draws`` Gaussian weight draws (one draw when sigma is 0)."""
        if sigma == 0:
            return F.cross_entropy(model(inputs), targets)
        params = dict(model.named_parameters())
        total = 0.0
        for _ in range(draws):
            noisy = {name: p + sigma * torch.randn(p.shape, device=p.device, generator=self.generator)
                     for name, p in params.items()}  # fmt: skip
            total = total + F.cross_entropy(functional_call(model, noisy, (inputs,)), targets)
        return total / draws

    def surrogate_update(self, model, optimizer, inputs, targets, history) -> None:
        if not self._robust(history):
            return super().surrogate_update(model, optimizer, inputs, targets, history)
        for sigma in self._sigmas():
            with autocast(self.device, self.precision):
                loss = self._averaged_loss(model, inputs, targets, sigma, self.config.train_draws)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
            optimizer.step()

    def noise_update(self, model, clean, targets, delta, history) -> torch.Tensor:
        if not self._robust(history):
            return super().noise_update(model, clean, targets, delta, history)
        cfg = self.config
        for _ in range(cfg.pgd_steps):
            for sigma in self._sigmas():
                loss_fn = lambda m, x, y, s=sigma: self._averaged_loss(m, x, y, s, cfg.noise_draws)  # noqa: E731
                delta = pgd(model, clean, targets, delta, budget=cfg.budget, step_size=cfg.step_size,
                            steps=1, minimize=True, loss_fn=loss_fn)  # fmt: skip
        return delta
