"""PUE: provably unlearnable examples (Wang et al., NDSS 2025).

Class-wise error-minimizing noise made robust to Gaussian weight perturbations.
Until the surrogate first exceeds ``robust_after_accuracy`` on the perturbed data
the loop is plain UE-c. After that, for every sigma level 0, step, ..., sigma_max:
- the surrogate takes one SGD step on the sum over ``train_draws`` weight draws
  theta + N(0, sigma^2) (all parameters, not BN running statistics) of the loss
  divided by (sigma levels x draws), as the official ``train_batch_robust`` does:
  each step is therefore 1/levels of a step on the draw-averaged loss;
- the noise takes one signed step on the input gradient summed over
  ``noise_draws`` weight draws (only its sign matters).
Each draw is backpropagated on its own and its gradient accumulated, so memory
does not grow with the number of draws (the official code does the same; one
graph over 100 draws of ResNet-18 at batch 128 would not fit any GPU). As there,
the gradient norm is clipped after every draw's backward. Sigma level 0 uses one
forward: its draws are all the unperturbed weights, so their scaled sum is the
same gradient.

Defaults are those of the official make_pue.py / make_pue.sh
(NeuralSec/certified-data-learnability): sigma_max 0.25, step 0.05, 100 / 10
draws, 20 surrogate steps per round, batch 128 for the surrogate and for the noise
subset, stop at 90% accuracy on the 20% subset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dememo.protect.base import register_protector
from dememo.protect.error_min import ClassWiseConfig, ErrorMinimizing
from dememo.protect.pixel_pgd import project_linf
from dememo.runtime import autocast


class PUEConfig(ClassWiseConfig):
    train_steps: int = 20
    train_batch_size: int = 128
    noise_batch_size: int = 128
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

    def _weight_draws(self, model: nn.Module, sigma: float, draws: int):
        """Yield ``draws`` parameter sets theta + N(0, sigma^2), one at a time (the model's own
        parameters once when sigma is 0), so that each draw's graph can be freed before the next."""
        params = dict(model.named_parameters())
        if sigma == 0:
            yield params
            return
        for _ in range(draws):
            yield {name: p + sigma * torch.randn(p.shape, device=p.device, generator=self.generator)
                   for name, p in params.items()}  # fmt: skip

    def _loss(self, model, params, inputs, targets) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return F.cross_entropy(functional_call(model, params, (inputs,)), targets)

    def surrogate_update(self, model, optimizer, inputs, targets, history) -> None:
        if not self._robust(history):
            return super().surrogate_update(model, optimizer, inputs, targets, history)
        cfg = self.config
        sigmas = self._sigmas()
        for sigma in sigmas:
            draws = cfg.train_draws if sigma else 1
            optimizer.zero_grad(set_to_none=True)
            for params in self._weight_draws(model, sigma, draws):
                (self._loss(model, params, inputs, targets) / (len(sigmas) * draws)).backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()

    def noise_update(self, model, clean, targets, delta, history) -> torch.Tensor:
        if not self._robust(history):
            return super().noise_update(model, clean, targets, delta, history)
        cfg = self.config
        delta = project_linf(delta.detach(), clean, cfg.budget)
        for _ in range(cfg.pgd_steps):
            for sigma in self._sigmas():
                grad = torch.zeros_like(delta)
                for params in self._weight_draws(model, sigma, cfg.noise_draws):
                    step = delta.detach().requires_grad_(True)
                    loss = self._loss(model, params, (clean + step).clamp(0, 1), targets)
                    grad += torch.autograd.grad(loss, step)[0]
                delta = project_linf(delta.detach() - cfg.step_size * grad.sign(), clean, cfg.budget)
        return delta
