"""What several studies share: a victim setting (data, model, recipe) and the validators of
registered names in settings (protections, unlearning methods, presets)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dememo.data.augment import Augment
from dememo.data.sources import DATASETS
from dememo.models import MODELS
from dememo.protect.presets import PRESETS
from dememo.reference import table3
from dememo.runtime import Precision
from dememo.train import RECIPES, Recipe, get_recipe


def known(registry: Any, value: str) -> str:
    if value not in registry:
        raise ValueError(f"unknown {registry.kind} {value!r}; valid: {', '.join(registry.names())}")
    return value


def known_preset(value: str) -> str:
    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; valid: {', '.join(sorted(PRESETS))}")
    return value


class Victim(BaseModel):
    """One victim setting: data, architecture and recipe (a registered name or a full recipe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    model: str
    recipe: str | Recipe
    epochs: int | None = Field(None, ge=1, description="override the recipe's epochs")
    train_per_class: int | None = Field(None, ge=1)
    test_per_class: int | None = Field(None, ge=1)
    precision: Precision = "auto"
    paper_column: str | None = Field(None, description="the paper's Table 3 column to compare with")

    _dataset = field_validator("dataset")(lambda cls, v: known(DATASETS, v))
    _model = field_validator("model")(lambda cls, v: known(MODELS, v))

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, value: str | Recipe) -> str | Recipe:
        return known(RECIPES, value) if isinstance(value, str) else value

    @field_validator("paper_column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is not None and value not in table3():
            raise ValueError(f"unknown Table 3 column {value!r}; valid: {', '.join(table3())}")
        return value

    def recipe_for(self, augment: bool) -> Recipe:
        base = get_recipe(self.recipe) if isinstance(self.recipe, str) else self.recipe
        overrides: dict[str, object] = {"epochs": self.epochs} if self.epochs is not None else {}
        if not augment:
            overrides["augment"] = Augment()
        return Recipe.model_validate({**base.model_dump(), **overrides}) if overrides else base

    def describe(self) -> str:
        recipe = self.recipe if isinstance(self.recipe, str) else self.recipe.name
        subset = f", {self.train_per_class}/class" if self.train_per_class else ""
        return f"{self.model} on {self.dataset}{subset} ({recipe})"
