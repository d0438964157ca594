"""The llm study: the SoK paper's language-model case study (section 6.3.3, Table 4, Figure 12).

Per scale: fine-tune the pretrained LM on every task's clean examples (Clean) and on
their RegText-protected versions (RegText); per task, forget it from the RegText model
with each unlearning method (one run per task, the reading of Table 4 in FACTS 5), and
attack each unlearned model with the recovery attack (Figure 12). Labels: task, column
('clean', 'regtext' or the method), role ('model' or 'recover') and seed.

``seeds`` repeats the plan per seed (default ``[seed]``): fine-tuning, unlearning and the
attack take that seed; the examples (split, drawn articles, RegText) stay those of ``seed``,
so every seed answers the same question and shares the cached frozen-layer inputs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from dememo.errors import ConfigError
from dememo.experiments.spec import Spec, describe_error
from dememo.experiments.stages.lm_finetune import lm_finetune_stage
from dememo.experiments.stages.lm_recover import lm_recover_stage
from dememo.experiments.stages.lm_unlearn import lm_unlearn_stage
from dememo.experiments.studies.base import Planned, Study, register_study
from dememo.experiments.studies.common import known
from dememo.lm.data import LMData
from dememo.lm.jobs import LMSetup, RecoveryConfig
from dememo.lm.model import check_source
from dememo.lm.scoring import SCORING
from dememo.lm.train import LMRecipe
from dememo.lm.unlearn import LM_UNLEARNERS

METHOD_ORDER = ("rt", "ga", "npo", "ft")  # Table 4's columns after Clean and RegText


class LLMSettings(LMData):
    """One scale of the llm spec: the data fields of LMData, then the model and the recipes."""

    model: str = Field(description="smollm2-135m, tiny:<hidden>x<layers> or a Hugging Face model folder")
    train_layers: int | None = Field(None, ge=1, description="train only the last N decoder layers")
    scoring: str = Field("choice", description="choice (yes vs no) or generate (dememo.lm.scoring)")
    seeds: list[int] | None = Field(
        None, min_length=1, description="repeat the plan per seed (default [seed])"
    )
    recipe: LMRecipe
    unlearn: dict[str, dict[str, Any]] = Field(default_factory=lambda: {m: {} for m in METHOD_ORDER})
    etas: tuple[float, ...] = Field(min_length=1)
    relative_eta: bool = True
    projection: Literal["ball", "sphere"] = "ball"
    attack_per_task: int = Field(8, ge=1)
    recovery: LMRecipe
    attacked: tuple[str, ...] = ("ga", "npo", "ft", "rt")
    notes: str = ""

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        try:
            return check_source(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    _scoring = field_validator("scoring")(lambda cls, value: known(SCORING, value))

    @field_validator("unlearn")
    @classmethod
    def _methods(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = [m for m in value if m not in LM_UNLEARNERS]
        if unknown:
            valid = ", ".join(LM_UNLEARNERS.names())
            raise ValueError(f"unknown LM unlearning method(s) {unknown}; valid: {valid}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LLMSettings:
        missing = [m for m in self.attacked if m not in self.unlearn]
        if missing:
            raise ValueError(f"attacked method(s) {missing} are not in 'unlearn'")
        if self.recipe.lora_rank is not None and self.train_layers is not None:
            raise ValueError("LoRA adapts every layer: set train_layers or recipe.lora_rank, not both")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        return self

    def seed_list(self) -> list[int]:
        """The seeds the plan repeats over (``seeds``, or the one ``seed``)."""
        return list(self.seeds) if self.seeds else [self.seed]

    def setup(self) -> LMSetup:
        data = LMData.model_validate(self.model_dump(include=set(LMData.model_fields)))
        return LMSetup(model=self.model, train_layers=self.train_layers, data=data, scoring=self.scoring)

    def recovery_config(self, seed: int) -> RecoveryConfig:
        return RecoveryConfig(etas=self.etas, relative=self.relative_eta, projection=self.projection,
                              recipe=self.recovery, attack_examples=self.attack_per_task,
                              seed=seed)  # fmt: skip

    def methods(self) -> list[str]:
        known = [m for m in METHOD_ORDER if m in self.unlearn]
        return known + [m for m in self.unlearn if m not in METHOD_ORDER]


@register_study
class LLMStudy(Study):
    name = "llm"
    Settings = LLMSettings

    def plan(self, settings: LLMSettings) -> list[Planned]:  # type: ignore[override]
        return [item for seed in settings.seed_list() for item in self.plan_seed(settings, seed)]

    @staticmethod
    def plan_seed(settings: LLMSettings, seed: int) -> list[Planned]:
        setup = settings.setup()
        clean = lm_finetune_stage(setup, settings.recipe, "clean", seed)
        regtext = lm_finetune_stage(setup, settings.recipe, "protected", seed)
        recovery = settings.recovery_config(seed)
        planned = []
        for task in settings.tasks:
            where = {"task": task, "seed": seed}
            planned.append(Planned(clean, {**where, "column": "clean", "role": "model"}))
            planned.append(Planned(regtext, {**where, "column": "regtext", "role": "model"}))
            for method in settings.methods():
                unlearned = lm_unlearn_stage(
                    regtext, method, task, **{"seed": seed, **settings.unlearn[method]}
                )
                planned.append(Planned(unlearned, {**where, "column": method, "role": "model"}))
                if method in settings.attacked:
                    stage = lm_recover_stage(unlearned, recovery)
                    planned.append(Planned(stage, {**where, "column": method, "role": "recover"}))
        return planned


def with_overrides(spec: Spec, scale: str, **overrides: Any) -> Spec:
    """``spec`` with one scale's settings changed (``llm-study``'s options: model, corpus,
    tasks, train_layers, recipe fields such as lora_rank); validated like the YAML."""
    spec.settings(scale)  # an unknown scale: the error naming the valid ones
    block = dict(spec.scales[scale])
    recipe = {k: overrides.pop(k) for k in list(overrides) if k in LMRecipe.model_fields}
    if recipe:
        block["recipe"] = {**block["recipe"], **recipe}
        if recipe.get("lora_rank") is not None:
            block["train_layers"] = None  # LoRA adapts every layer
    block.update(overrides)
    try:
        LLMSettings.model_validate(block)
    except ValidationError as error:
        raise ConfigError(describe_error(f"llm-study --scale {scale}", error)) from None
    return spec.model_copy(update={"scales": {**spec.scales, scale: block}})
