"""Recovery attack (SoK section 6.3; FACTS 3): projected SGD on the weights.

After every optimizer step the weights are projected back onto the l2 ball of
radius eta around the starting weights (all trainable parameters as one vector,
BatchNorm affine included). ``projection="sphere"`` instead always rescales the
shift to length eta (what the PUE reference code does). BatchNorm running
statistics are buffers, not weights, so the ball does not bound them; the
policy is explicit and named in every result: ``freeze`` keeps them (BN layers
run in eval mode during the attack), ``update`` lets them drift (PUE's code).

Radius reached. An attack whose budget (epochs x steps x lr) cannot carry the weights to
the ball's edge is not bounded by eta at all, only by its step count, and "recovered at
eta" then means "recovered after so many steps". Every curve records, per eta, the
distance reached and whether the radius was reached (:func:`radius_reached`): eta is 0,
or the ball projection engaged (the unprojected shift exceeded eta) at some step, or the
final distance is within ``RADIUS_TOLERANCE`` (1%) of eta.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dememo.audit.plots import new_axes, save_figure
from dememo.audit.target import require_disjoint
from dememo.data.augment import Augment
from dememo.data.batches import DeviceLoader
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError, TrainingError
from dememo.runtime import MEMORY_FORMAT, channels_last, seed_everything
from dememo.train import Recipe, accuracy, make_optimizer, set_lr

RADIUS_TOLERANCE = 0.01
TABLE7 = "SoK paper, Appendix A, Table 7"
PUE_CODE = "PUE reference code (recover.py): cosine schedule, grad-norm clip 5, batch 128 (config)"


class RecoveryConfig(BaseModel):
    """How the attacker fine-tunes inside the ball; its hash names cached results."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipe: Recipe
    projection: Literal["ball", "sphere"] = "ball"
    batchnorm: Literal["freeze", "update"] = "freeze"
    grad_clip: float | None = Field(5.0, gt=0)
    seed: int = 0


# Table 7 (FACTS 3.2); batch size, schedule and clipping are not in the paper: PUE's code.
TABLE7_RECIPES = {
    "cifar10": Recipe(name="recover-cifar10", epochs=60, lr=0.01, weight_decay=5e-4,
                      augment=Augment(crop_padding=4, flip=True), source=f"{TABLE7}; {PUE_CODE}"),
    "cifar100": Recipe(name="recover-cifar100", epochs=100, lr=0.01, weight_decay=5e-5,
                       augment=Augment(crop_padding=4, flip=True, rotation=15),
                       source=f"{TABLE7}; {PUE_CODE}"),
}  # fmt: skip


def table7_config(dataset: str, **overrides: object) -> RecoveryConfig:
    """Table 7's row for ``dataset`` (its CIFAR-10 row, without augmentation, for datasets the
    table does not cover); ``overrides`` replace recipe fields (epochs, lr, ...) or config fields."""
    recipe = TABLE7_RECIPES.get(dataset)
    if recipe is None:
        recipe = TABLE7_RECIPES["cifar10"].model_copy(update={
            "name": f"recover-{dataset}", "augment": Augment(),
            "source": f"{TABLE7} has no {dataset} row: its CIFAR-10 row without augmentation"})  # fmt: skip
    recipe_fields = {k: v for k, v in overrides.items() if k in Recipe.model_fields}
    config_fields = {k: v for k, v in overrides.items() if k not in Recipe.model_fields}
    if recipe_fields:
        recipe = Recipe.model_validate({**recipe.model_dump(), **recipe_fields})
    return RecoveryConfig(recipe=recipe, **config_fields)


def weight_distance(params: Sequence[torch.Tensor], start: Sequence[torch.Tensor]) -> float:
    return math.sqrt(
        sum(
            float((p.detach() - s.detach()).double().pow(2).sum()) for p, s in zip(params, start, strict=True)
        )
    )


@torch.no_grad()
def project_(params: Sequence[torch.Tensor], start: Sequence[torch.Tensor], eta: float,
             projection: str = "ball") -> float:  # fmt: skip
    """Project ``params`` in place onto the ball (or sphere) of radius ``eta`` around
    ``start``; returns the distance after projection. Inside the ball nothing moves."""
    if eta < 0:
        raise ConfigError(f"eta must be >= 0, got {eta}")
    norm = weight_distance(params, start)
    if projection == "ball" and norm <= eta:
        return norm
    if norm == 0.0:  # sphere with no direction yet: stay at the start until a step moves
        return 0.0
    scale = eta / norm
    for p, s in zip(params, start, strict=True):
        p.copy_(s + (p - s) * scale)
    return weight_distance(params, start)


def radius_reached(distance: float, eta: float, projected_steps: int = 0) -> bool:
    """Whether the l2 constraint was active at radius ``eta``: eta is 0 (the ball is a point),
    the projection engaged at some step (``projected_steps`` > 0: the unprojected shift
    exceeded eta), or the final ``distance`` is within ``RADIUS_TOLERANCE`` of eta. Without
    a step count (older reports) only the distance decides."""
    return eta == 0 or projected_steps > 0 or distance >= (1 - RADIUS_TOLERANCE) * eta


def _set_batchnorm(model: nn.Module, policy: str) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train(policy == "update")


def recover(
    model: nn.Module,
    attack: ImageSet,
    eta: float,
    config: RecoveryConfig,
    *,
    device: torch.device | str = "cpu",
    on_step=None,
) -> nn.Module:
    """A copy of ``model`` fine-tuned on ``attack`` with projected SGD (radius ``eta``).

    ``on_step(params, start)`` is called after every projected step (for tests/monitoring).
    """
    return _attack(model, attack, eta, config, device=device, on_step=on_step)[0]


def _attack(
    model: nn.Module,
    attack: ImageSet,
    eta: float,
    config: RecoveryConfig,
    *,
    device: torch.device | str = "cpu",
    on_step=None,
) -> tuple[nn.Module, int]:
    """:func:`recover`, and the number of steps at which the projection engaged (the shift
    before projecting exceeded eta)."""
    if eta < 0:
        raise ConfigError(f"eta must be >= 0, got {eta}")
    if len(attack) == 0:
        raise ConfigError("the recovery attack needs a non-empty attack set")
    device = torch.device(device)
    seed_everything(config.seed)
    attacked = copy.deepcopy(model).to(device=device, memory_format=MEMORY_FORMAT)
    attacked.train()
    _set_batchnorm(attacked, config.batchnorm)
    params = [p for p in attacked.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    recipe = config.recipe
    loader = DeviceLoader(attack, recipe.batch_size, device, augment=recipe.augment, seed=config.seed)
    optimizer = make_optimizer(attacked, recipe)
    total, step, projected = recipe.epochs * len(loader), 0, 0
    for _ in range(recipe.epochs):
        for batch in loader:
            set_lr(optimizer, recipe, step, total)
            loss = F.cross_entropy(attacked(channels_last(batch.images)), batch.labels)
            if not torch.isfinite(loss):
                raise TrainingError(f"recovery attack: loss became {float(loss)} (eta {eta})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            if weight_distance(params, start) > eta * (1 + 1e-9):
                projected += 1
            project_(params, start, eta, config.projection)
            if on_step is not None:
                on_step(params, start)
            step += 1
    return attacked.eval(), projected


@dataclass
class RecoveryCurve:
    """Accuracy on the evaluation set after the attack, per eta, for one model."""

    name: str
    etas: list[float]
    accuracies: list[float]
    distances: list[float]  # ||theta - theta_0|| reached at each eta
    control: list[float] = field(default_factory=list)  # accuracy on the other classes (collapse check)
    reached: list[bool] = field(default_factory=list)  # radius_reached at each eta (default: by distance)
    projected_steps: list[int] = field(default_factory=list)  # steps at which the projection engaged

    def __post_init__(self) -> None:
        if not self.reached:
            steps = self.projected_steps or [0] * len(self.etas)
            self.reached = [radius_reached(d, e, n)
                            for d, e, n in zip(self.distances, self.etas, steps, strict=True)]  # fmt: skip

    def unreached(self) -> list[float]:
        """The etas > 0 whose radius the attack did not reach."""
        return [e for e, r in zip(self.etas, self.reached, strict=True) if e > 0 and not r]

    def row(self) -> dict[str, object]:
        return {
            "model": self.name,
            **{f"eta={e:g}": a for e, a in zip(self.etas, self.accuracies, strict=True)},
            **{f"distance eta={e:g}": d for e, d in zip(self.etas, self.distances, strict=True)},
            **{f"reached eta={e:g}": r for e, r in zip(self.etas, self.reached, strict=True)},
        }


@dataclass
class RecoveryResult:
    """Recovery curves of the audited model and its references (Before, RT, clean, ...)."""

    curves: list[RecoveryCurve]
    config: RecoveryConfig
    attack_set: str
    eval_set: str
    notes: list[str] = field(default_factory=list)

    def table(self) -> list[dict[str, object]]:
        return [c.row() for c in self.curves]

    def warnings(self) -> list[str]:
        """One line per curve whose attack did not reach its radius at some eta > 0."""
        return [unreached_warning(c.name, c.unreached(), c.etas, c.distances) for c in self.curves
                if c.unreached()]  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return {
            "projection": self.config.projection, "batchnorm": self.config.batchnorm,
            "recipe": self.config.recipe.model_dump(mode="json"), "grad_clip": self.config.grad_clip,
            "attack_set": self.attack_set, "eval_set": self.eval_set, "notes": self.notes,
            "curves": [{"name": c.name, "etas": c.etas, "accuracy": c.accuracies,
                        "distance": c.distances, "reached": c.reached,
                        "projected_steps": c.projected_steps, "control_accuracy": c.control}
                       for c in self.curves],
            "radius_tolerance": RADIUS_TOLERANCE, "warnings": self.warnings(),
        }  # fmt: skip

    def plot(self, path) -> None:
        title = (f"recovery ({self.config.projection}, BN {self.config.batchnorm}, "
                 f"{self.config.recipe.epochs} ep) on {self.eval_set}")  # fmt: skip
        figure, axes = new_axes(title, "eta (l2 bound on the weight shift)", "accuracy")
        hollow = False
        for c in self.curves:
            line = axes.plot(c.etas, c.accuracies, marker="o", ms=3, label=c.name)[0]
            missed = [(e, a) for e, a, r in zip(c.etas, c.accuracies, c.reached, strict=True) if not r]
            if missed:
                hollow = True
                axes.plot(*zip(*missed, strict=True), "o", ms=7, mfc="white", color=line.get_color())
            if c.control:
                axes.plot(c.etas, c.control, ls=":", color=line.get_color(), label=f"{c.name}: other classes")
        if hollow:
            axes.plot([], [], "o", ms=7, mfc="white", color="gray", label="radius not reached")
        axes.legend(fontsize=7)
        save_figure(figure, path)


def unreached_warning(name: str, unreached: Sequence[float], etas: Sequence[float],
                      distances: Sequence[float | None]) -> str:  # fmt: skip
    """'<name>: radius not reached at eta 0.4 (distance 0.14), ...': the attack's budget, not
    eta, bounded it there, so its recovered accuracy says nothing about depth at that radius."""
    parts = []
    for eta in unreached:
        d = distances[list(etas).index(eta)]
        parts.append(f"eta {eta:g} (distance {'?' if d is None else f'{d:.3g}'})")
    return f"{name}: radius not reached at {', '.join(parts)}: raise the attack's epochs or lr"


def recovery_curve(
    models: dict[str, nn.Module],
    attack: ImageSet,
    evaluation: ImageSet,
    etas: Sequence[float],
    config: RecoveryConfig,
    *,
    device: torch.device | str = "cpu",
    control: ImageSet | None = None,
) -> RecoveryResult:
    """Attack every model at every eta; evaluate on ``evaluation`` (disjoint from ``attack``)
    and, when given, on ``control`` (other classes' test images: an attack on one class can
    collapse the model to always predicting it, which a target-class accuracy rewards)."""
    if not etas or not all(math.isfinite(e) and e >= 0 for e in etas):
        raise ConfigError(f"etas must be a non-empty list of finite values >= 0, got {list(etas)}")
    require_disjoint(attack, evaluation, "recovery attack data vs evaluation data")
    curves = []
    for name, model in models.items():
        accuracies, distances, controls, steps = [], [], [], []
        for eta in etas:
            if eta == 0 and config.batchnorm == "freeze":  # nothing can move: skip the attack's steps
                attacked = copy.deepcopy(model).to(device=device, memory_format=MEMORY_FORMAT).eval()
                steps.append(0)
            else:
                attacked, projected = _attack(model, attack, eta, config, device=device)
                steps.append(projected)
            start = [p for p in model.parameters() if p.requires_grad]
            moved = [p for p in attacked.parameters() if p.requires_grad]
            distances.append(weight_distance([m.cpu() for m in moved], [s.cpu() for s in start]))
            accuracies.append(accuracy(attacked, evaluation, device=device))
            if control is not None:
                controls.append(accuracy(attacked, control, device=device))
        curves.append(RecoveryCurve(name, [float(e) for e in etas], accuracies, distances, controls,
                                    projected_steps=steps))  # fmt: skip
    notes = [f"BatchNorm running statistics: {config.batchnorm}",
             f"projection onto the l2 {config.projection} around the starting weights "
             "after every step",
             f"radius reached: the projection engaged at some step or the final distance is within "
             f"{100 * RADIUS_TOLERANCE:g}% of eta"]  # fmt: skip
    return RecoveryResult(curves, config, attack.name, evaluation.name, notes)
