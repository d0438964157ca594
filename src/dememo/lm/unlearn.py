"""Unlearning one task from a fine-tuned causal LM: RT, FT, GA and NPO.

A sibling of ``dememo.unlearn``: its ``Unlearner.run`` takes an ImageSet and index
tensors, while an LM forgets encoded instruction examples and RT needs the pretrained
base model and the fine-tuning recipe, so LM methods have their own small registry.

NPO (Zhang et al. 2024): L = (2 / beta) * E_forget[ log(1 + (pi_theta(y|x) / pi_ref(y|x))^beta) ]
= (2 / beta) * E[softplus(beta * (log pi_theta - log pi_ref))], pi_ref the model before
unlearning, beta = 0.1, plus ``retain_weight`` (1) times the answer loss on a batch of the
retained tasks: the default of the official code (licong-lin/negative-preference-optimization,
config/forget.yaml: forget_loss npo_grad_diff, npo_coeff 1, grad_diff_coeff 1, beta 0.1); the
SoK paper gives none. At the reference weights NPO's gradient is GA's (2 sigmoid(0) = 1 per
example), and AdamW's first step is scale-free, so one step of NPO without the retain term is
one step of GA; they part as the forget log-probabilities fall (tests/test_lm.py).
"""

from __future__ import annotations

import copy
import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dememo.errors import ConfigError
from dememo.lm.batches import answer_scores, batches, nll
from dememo.lm.train import LMRecipe, finetune, run_epochs
from dememo.options import SeedField, validate_options
from dememo.registry import Registry


class LMUnlearnConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(1, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    seed: SeedField = 0


class NPOConfig(LMUnlearnConfig):
    beta: float = Field(0.1, gt=0)
    retain_weight: float = Field(1.0, ge=0)


@dataclass
class LMContext:
    """What some methods need beyond the model: the pretrained base (RT) and the recipe
    that fine-tuned it (RT retrains with it)."""

    base: Callable[[], nn.Module]
    recipe: LMRecipe
    pad_id: int
    device: torch.device


class LMUnlearner(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[LMUnlearnConfig]] = LMUnlearnConfig

    def __init__(self, config: LMUnlearnConfig) -> None:
        self.config = config

    @abstractmethod
    def run(self, model: nn.Module, forget: list, retain: list, context: LMContext) -> nn.Module:
        """The unlearned model (``model`` edited in place, or a new one for RT)."""

    def descend(self, model: nn.Module, items: list, loss_fn: Callable, context: LMContext) -> nn.Module:
        """``self.config.epochs`` of AdamW on ``loss_fn`` over ``items``, in place."""
        c = self.config
        run_epochs(model, items, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, pad_id=context.pad_id,
                   device=context.device, loss_fn=loss_fn, seed=c.seed,
                   what=f"{self.name.upper()} unlearning")  # fmt: skip
        return model


LM_UNLEARNERS: Registry[type[LMUnlearner]] = Registry("LM unlearning method")


def npo_loss(logp: torch.Tensor, logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO's forget loss from summed answer log-probabilities under the model and the reference."""
    return (2.0 / beta) * F.softplus(beta * (logp - logp_ref)).mean()


@LM_UNLEARNERS.register("rt")
class Retrain(LMUnlearner):
    name, description = "rt", "retrain: fine-tune the pretrained base on the retained tasks only"

    def run(self, model, forget, retain, context):
        return finetune(
            context.base(),
            retain,
            context.recipe,
            pad_id=context.pad_id,
            device=context.device,
            seed=self.config.seed,
        )


@LM_UNLEARNERS.register("ft")
class FineTune(LMUnlearner):
    name, description = "ft", "fine-tune on the retained tasks (catastrophic forgetting)"

    def run(self, model, forget, retain, context):
        return self.descend(model, retain, nll, context)


@LM_UNLEARNERS.register("ga")
class GradientAscent(LMUnlearner):
    name, description = "ga", "gradient ascent on the forget task's answer loss"

    def run(self, model, forget, retain, context):
        return self.descend(model, forget, lambda m, b: -nll(m, b), context)


@LM_UNLEARNERS.register("npo")
class NPO(LMUnlearner):
    name, description = "npo", "negative preference optimization (Zhang et al. 2024) + retain loss"
    Config = NPOConfig

    def run(self, model, forget, retain, context):
        c: NPOConfig = self.config  # type: ignore[assignment]
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        retain_batches = (
            itertools.cycle(
                list(
                    batches(
                        retain,
                        c.batch_size,
                        context.pad_id,
                        context.device,
                        shuffle=True,
                        rng=random.Random(c.seed),
                    )
                )
            )
            if c.retain_weight > 0 and retain
            else None
        )

        def loss(m, batch):
            logp = answer_scores(m, batch)[0]
            with torch.no_grad():
                logp_ref = answer_scores(reference, batch)[0]
            value = npo_loss(logp, logp_ref, c.beta)
            if retain_batches is not None:
                value = value + c.retain_weight * nll(m, next(retain_batches))
            return value

        return self.descend(model, forget, loss, context)


def lm_unlearn_config(method: str, **options: object) -> LMUnlearnConfig:
    """The validated options of ``method`` (errors name the method and the bad option)."""
    cls = LM_UNLEARNERS.get(method)
    return validate_options(cls.Config, method, **options)


def lm_unlearn(
    method: str, model: nn.Module, forget: list, retain: list, context: LMContext, **options: object
) -> nn.Module:
    config = lm_unlearn_config(method, **options)
    if not forget:
        raise ConfigError("forget task has no examples: nothing to unlearn")
    return LM_UNLEARNERS.get(method)(config).run(model, forget, retain, context)
