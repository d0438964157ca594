"""The recovery attack on an LM (SoK section 6.3, Figure 12) through the audit code: the
attacker fine-tunes on a few examples of the forgotten task and projects the weights after
every step onto the l2 ball of radius eta around the starting weights
(``dememo.audit.recovery.project_``), or onto its sphere (``projection="sphere"``, with
``optimizer: sgd`` in the recipe: the PUE reference code's attack).

eta is absolute, or relative to the starting weights' l2 norm (``relative=True``:
eta_abs = eta * ||theta_0||). An attack whose steps cannot carry the weights to the ball's
edge is bounded by its budget (epochs x steps x lr), not by eta: every point records the
distance reached, the steps at which the projection engaged, and whether the radius was
reached (``dememo.audit.recovery.radius_reached``). With AdamW each step moves every trained
weight by about lr, i.e. ~lr * sqrt(trained weights) in l2 (0.27 at lr 1e-4 on 7.1M weights).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from dememo.audit.recovery import project_, radius_reached, weight_distance
from dememo.errors import ConfigError
from dememo.lm.batches import Item, nll
from dememo.lm.scoring import Score
from dememo.lm.train import LMRecipe, run_epochs

Projection = Literal["ball", "sphere"]


@dataclass(frozen=True)
class RecoveryPoint:
    """The attack at one eta: accuracy and "yes" share after it, the absolute radius, the distance
    reached, the steps at which the projection engaged, and whether the radius was reached."""

    eta: float
    radius: float
    accuracy: float
    yes_share: float
    distance: float
    projected_steps: int
    reached: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


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
    attack: list[Item],
    radius: float,
    recipe: LMRecipe,
    *,
    projection: Projection = "ball",
    pad_id: int,
    device: torch.device,
    seed: int = 0,
) -> tuple[nn.Module, float, int]:
    """A copy of ``model`` fine-tuned on ``attack`` within (or on) the l2 sphere of absolute
    ``radius``; returns it, the distance reached and the number of steps whose unprojected
    shift exceeded the radius."""
    attacked = copy.deepcopy(model).to(device)
    params = [p for p in attacked.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    projected = 0

    def project() -> None:
        nonlocal projected
        projected += weight_distance(params, start) > radius * (1 + 1e-9)
        project_(params, start, radius, projection)

    run_epochs(attacked, attack, epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size,
               pad_id=pad_id, device=device, loss_fn=nll, seed=seed, weight_decay=recipe.weight_decay,
               grad_clip=recipe.grad_clip, optimizer=recipe.optimizer, momentum=recipe.momentum,
               what=f"recovery attack (radius {radius:g})", after_step=project)  # fmt: skip
    return attacked.eval(), weight_distance(params, start), projected


def lm_recovery_curve(
    model: nn.Module,
    attack: list[Item],
    etas: list[float],
    evaluate: Callable[[nn.Module], Score],
    *,
    recipe: LMRecipe,
    projection: Projection = "ball",
    pad_id: int,
    device: torch.device,
    relative: bool = True,
    seed: int = 0,
) -> list[RecoveryPoint]:
    """The attack at every eta (relative when ``relative``), scored by ``evaluate``; eta 0 is the
    model as it is."""
    if not attack:
        raise ConfigError("the recovery attack needs attack examples")
    points = []
    for eta in etas:
        radius = absolute_eta(model, eta, relative)
        if radius == 0:
            attacked, distance, projected = model, 0.0, 0
        else:
            attacked, distance, projected = recover_lm(model, attack, radius, recipe, projection=projection,
                                                       pad_id=pad_id, device=device, seed=seed)  # fmt: skip
        result = evaluate(attacked)
        points.append(RecoveryPoint(eta, radius, result.accuracy, result.yes_share, distance, projected,
                                    radius_reached(distance, radius, projected)))  # fmt: skip
    return points
