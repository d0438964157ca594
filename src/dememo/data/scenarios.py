"""Scenarios of the paper's section 6.2.1: named index sets over a training split.

- ``subset``: in every class a seeded ``protected_fraction`` (90%) of the training
  samples is protected (Du; the same images without noise are Duc) and the rest is
  clean (Dc). The forget set is Du or Dc of one class; evaluation uses Du, Duc and Dc of
  that class and the whole test set (Dt).
- ``class``: ``protected_classes`` (0-3) are protected, the others clean; one class
  (not an observation class) is forgotten. A protected class is evaluated on Du, Duc,
  Dut (its test images) and Dtr, a clean one on Dc, Dct and Dtr. Dtr, the observation
  set, is the *test* images of ``observation_classes`` (8, 9): the paper does not say
  train or test; its healthy values near 97.5% suggest test images (an assumption).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError

Source = Literal["released", "clean", "test"]


class ScenarioSettings(BaseModel):
    """The scenario's options, with the paper's values as defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["subset", "class"]
    protected_fraction: float = Field(0.9, gt=0, lt=1)  # subset level
    protected_classes: tuple[int, ...] = (0, 1, 2, 3)  # class level
    observation_classes: tuple[int, ...] = (8, 9)  # class level
    seed: int = 0


@dataclass(frozen=True)
class EvalSet:
    """Samples to evaluate on: ``released`` (training split as trained on), ``clean``
    (the same positions without protection) or ``test``."""

    name: str
    source: Source
    indices: torch.Tensor


@dataclass(frozen=True)
class Target:
    """One forgetting target: what to forget, what to keep, where to measure."""

    cls: int
    part: str  # the forget set's name: Du or Dc (subset), Du or Dc of a whole class (class)
    forget: torch.Tensor
    retain: torch.Tensor
    evals: tuple[EvalSet, ...]


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(mask).flatten()


@dataclass(frozen=True)
class Scenario:
    settings: ScenarioSettings
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    protected: torch.Tensor  # training positions that are protected (sorted)

    @property
    def key(self) -> str:
        """Names the scenario in artifact configs: settings plus the protected positions."""
        digest = hashlib.sha256(self.settings.model_dump_json().encode())
        digest.update(self.protected.numpy().tobytes())
        return f"{self.settings.level}-{digest.hexdigest()[:12]}"

    def protected_mask(self) -> torch.Tensor:
        mask = torch.zeros(len(self.train_labels), dtype=torch.bool)
        mask[self.protected] = True
        return mask

    def release(self, train: ImageSet, protected_images: ImageSet) -> ImageSet:
        """The training split as trained on: protected positions from ``protected_images``,
        every other position clean (sample-wise noise made for more samples is reverted)."""
        images = train.images.clone()
        images[self.protected] = protected_images.images[self.protected]
        return ImageSet(images, train.labels, train.classes, f"{train.name}+{self.key}")

    def check_class(self, cls: int) -> None:
        if not 0 <= cls < self.num_classes:
            raise ConfigError(f"class {cls} does not exist (classes 0..{self.num_classes - 1})")
        if self.settings.level == "class" and cls in self.settings.observation_classes:
            raise ConfigError(f"class {cls} is an observation class (Dtr) and is never forgotten")

    def parts(self, cls: int) -> tuple[str, ...]:
        """The forget sets this class offers: Du and Dc (subset), or its one part (class)."""
        if self.settings.level == "subset":
            return ("Du", "Dc")
        return ("Du",) if cls in self.settings.protected_classes else ("Dc",)

    def target(self, cls: int, part: str | None = None) -> Target:
        self.check_class(cls)
        part = part or self.parts(cls)[0]
        if part not in self.parts(cls):
            raise ConfigError(f"class {cls} has no forget set {part!r}; valid: {', '.join(self.parts(cls))}")
        in_class, protected = self.train_labels == cls, self.protected_mask()
        test_class = _positions(self.test_labels == cls)
        if self.settings.level == "subset":
            du, dc = _positions(in_class & protected), _positions(in_class & ~protected)
            forget = du if part == "Du" else dc
            evals = (
                EvalSet("Du", "released", du),
                EvalSet("Duc", "clean", du),
                EvalSet("Dc", "released", dc),
                EvalSet("Dt", "test", torch.arange(len(self.test_labels))),
            )
        else:
            forget = _positions(in_class)
            observe = _positions(
                torch.isin(self.test_labels, torch.tensor(self.settings.observation_classes))
            )
            if part == "Du":
                evals = (
                    EvalSet("Du", "released", forget),
                    EvalSet("Duc", "clean", forget),
                    EvalSet("Dut", "test", test_class),
                    EvalSet("Dtr", "test", observe),
                )
            else:
                evals = (
                    EvalSet("Dc", "released", forget),
                    EvalSet("Dct", "test", test_class),
                    EvalSet("Dtr", "test", observe),
                )
        if len(forget) == 0:
            raise ConfigError(f"class {cls}: forget set {part} is empty in this split")
        retain = _positions(~torch.isin(torch.arange(len(self.train_labels)), forget))
        return Target(cls, part, forget, retain, evals)


def build_scenario(settings: ScenarioSettings, train: ImageSet, test: ImageSet) -> Scenario:
    """Pick the protected positions of ``train`` (seeded, per class at subset level)."""
    classes = train.num_classes
    if settings.level == "class":
        named = set(settings.protected_classes) | set(settings.observation_classes)
        bad = sorted(c for c in named if not 0 <= c < classes)
        if bad:
            raise ConfigError(f"scenario classes {bad} do not exist in {train.name} (0..{classes - 1})")
        overlap = set(settings.protected_classes) & set(settings.observation_classes)
        if overlap:
            raise ConfigError(f"classes {sorted(overlap)} cannot be both protected and observation classes")
        protected = _positions(torch.isin(train.labels, torch.tensor(settings.protected_classes)))
    else:
        generator = torch.Generator().manual_seed(settings.seed)
        picks = []
        for c in range(classes):
            members = _positions(train.labels == c)
            keep = round(settings.protected_fraction * len(members))
            picks.append(members[torch.randperm(len(members), generator=generator)[:keep]])
        protected = torch.sort(torch.cat(picks)).values
    return Scenario(settings, train.labels.clone(), test.labels.clone(), classes, protected)
