"""The recovery attack on an LM (SoK section 6.3, Figure 12) through the audit code:
AdamW on a few examples of the forgotten task, projected after every step onto the l2
ball of radius eta around the starting weights (``dememo.audit.recovery.project_``).

eta is absolute, or relative to the starting weights' l2 norm (``relative=True``:
eta_abs = eta * ||theta_0||), since absolute radii do not compare across model sizes.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from dememo.audit.recovery import RecoveryCurve, project_, weight_distance
from dememo.errors import ConfigError
from dememo.lm.batches import accuracy, nll
from dememo.lm.train import LMRecipe, run_epochs


def weight_norm(model: nn.Module) -> float:
    return math.sqrt(
        sum(float(p.detach().double().pow(2).sum()) for p in model.parameters() if p.requires_grad)
    )


def absolute_eta(model: nn.Module, eta: float, relative: bool) -> float:
    if eta < 0:
        raise ConfigError(f"eta must be >= 0, got {eta}")
    return eta * weight_norm(model) if relative else eta


def recover_lm(
    model: nn.Module,
    attack: list,
    eta: float,
    recipe: LMRecipe,
    *,
    pad_id: int,
    device: torch.device,
    seed: int = 0,
) -> tuple[nn.Module, float]:
    """A copy of ``model`` fine-tuned on ``attack`` inside the ball of absolute radius ``eta``;
    returns it and the distance it reached."""
    attacked = copy.deepcopy(model).to(device)
    params = [p for p in attacked.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    run_epochs(
        attacked,
        attack,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        pad_id=pad_id,
        device=device,
        loss_fn=nll,
        seed=seed,
        grad_clip=recipe.grad_clip,
        what=f"recovery attack (eta {eta:g})",
        after_step=lambda: project_(params, start, eta),
    )
    return attacked.eval(), weight_distance(params, start)


def lm_recovery_curve(
    name: str,
    model: nn.Module,
    attack: list,
    evaluate: list,
    etas: list[float],
    *,
    recipe: LMRecipe,
    pad_id: int,
    device: torch.device,
    relative: bool = True,
    seed: int = 0,
) -> RecoveryCurve:
    """Accuracy on ``evaluate`` after the attack, per eta (eta = 0: the model as it is).
    The curve's etas are the given ones (relative when ``relative``)."""
    if not attack:
        raise ConfigError("the recovery attack needs attack examples")
    accuracies, distances = [], []
    for eta in etas:
        radius = absolute_eta(model, eta, relative)
        if radius == 0:
            attacked, reached = model, 0.0
        else:
            attacked, reached = recover_lm(
                model, attack, radius, recipe, pad_id=pad_id, device=device, seed=seed
            )
        accuracies.append(accuracy(attacked, evaluate, pad_id, device))
        distances.append(reached)
    return RecoveryCurve(name, list(etas), accuracies, distances)
