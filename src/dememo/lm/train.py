"""Fine-tuning a causal LM on instruction examples (full or LoRA), and the stored artifacts."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_serializer
from torch import nn

from dememo.errors import ConfigError, TrainingError
from dememo.lm.batches import Batch, batches, nll
from dememo.runtime import seed_everything

LM_KIND = "lm"


class LMRecipe(BaseModel):
    """AdamW (or SGD with ``momentum``) on the answer tokens' loss; ``lora_rank`` set: LoRA on
    the attention projections, merged into the weights afterwards. ``schedule: linear``: the
    learning rate falls linearly from ``lr`` to 0 over the steps (Hugging Face Trainer's default),
    so the last batches do not set the answer bias; ``constant`` (the default) is left out of the
    dump, so recipes from before the field keep their artifact and stage keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(3, ge=1)
    lr: float = Field(2e-4, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    batch_size: int = Field(8, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    lora_rank: int | None = Field(None, ge=1)
    lora_alpha: float = 16.0
    schedule: Literal["constant", "linear"] = "constant"

    @model_serializer(mode="wrap")
    def _dump(self, handler):  # noqa: ANN001, ANN202
        data = handler(self)
        if data.get("schedule") == "constant":
            del data["schedule"]
        return data


def run_epochs(
    model: nn.Module,
    items: list,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    seed: int = 0,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    optimizer: str = "adamw",
    momentum: float = 0.9,
    what: str = "fine-tuning",
    after_step: Callable[[], None] | None = None,
    schedule: str = "constant",
) -> int:
    """AdamW (or SGD) over shuffled batches of ``items`` for ``epochs``; returns the steps taken.
    ``schedule: linear``: the learning rate falls linearly from ``lr`` to 0 over the steps."""
    if not items:
        raise ConfigError(f"{what}: no examples")
    seed_everything(seed)
    rng = random.Random(seed)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * -(-len(items) // batch_size)
    if schedule == "linear":
        lr_at = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / total)
    elif schedule != "constant":
        raise ConfigError(f"unknown learning-rate schedule {schedule!r}; valid: constant, linear")
    steps = 0
    for _ in range(epochs):
        for batch in batches(items, batch_size, pad_id, device, shuffle=True, rng=rng):
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise TrainingError(f"{what}: loss became {float(loss)} at step {steps + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            if schedule == "linear":
                lr_at.step()
            if after_step is not None:
                after_step()
            steps += 1
    return steps


def finetune(
    model: nn.Module, items: list, recipe: LMRecipe, *, pad_id: int, device: torch.device, seed: int = 0
) -> nn.Module:
    """``model`` fine-tuned on ``items`` (in place for full fine-tuning; LoRA is merged)."""
    lora = recipe.lora_rank is not None
    trained = with_lora(model, recipe) if lora else model
    run_epochs(
        trained,
        items,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        pad_id=pad_id,
        device=device,
        loss_fn=nll,
        seed=seed,
        weight_decay=recipe.weight_decay,
        grad_clip=recipe.grad_clip,
        optimizer=recipe.optimizer,
        momentum=recipe.momentum,
        what="LoRA fine-tuning" if lora else "fine-tuning",
        schedule=recipe.schedule,
    )
    return trained.merge_and_unload() if lora else trained


def with_lora(model: nn.Module, recipe: LMRecipe) -> nn.Module:
    """``model`` wrapped with LoRA adapters of ``recipe.lora_rank`` on the attention q/v projections."""
    try:
        import peft
    except ImportError:
        raise ConfigError("LoRA needs peft (pip install peft==0.21.2)") from None
    lora = peft.LoraConfig(
        r=recipe.lora_rank,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=0.0,
        target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)
