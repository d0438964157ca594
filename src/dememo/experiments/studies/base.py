"""The study protocol: how a spec's settings become stages, and what each stage means to a view.

A study (one file each in this package, registered in STUDIES) has a pydantic
``Settings`` model, the schema of one scale of a spec, and ``plan(settings)``,
which returns the stages with labels (method, ratio, augmentation, ...) that the
spec's views use to place each result in a table or a figure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from dememo.experiments.stages import Stage, StageOutput
from dememo.registry import Registry


@dataclass(frozen=True)
class Planned:
    stage: Stage
    labels: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """A planned stage with its result: ``output`` when done, ``error`` when it failed."""

    labels: dict[str, Any]
    key: str
    output: StageOutput | None
    error: str | None = None

    def metric(self, name: str, split: str = "") -> float | None:
        return None if self.output is None else self.output.metrics.get((name, split))


class Study(ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    @abstractmethod
    def plan(self, settings: BaseModel) -> list[Planned]:
        """Every stage this scale needs, with labels; shared stages may appear more than once."""


STUDIES: Registry[Study] = Registry("study")


def register_study(cls: type[Study]) -> type[Study]:
    STUDIES.register(cls.name)(cls())
    return cls


def plan_labels(planned: list[Planned]) -> dict[str, list[dict[str, Any]]]:
    """Stage key -> every label set it was planned with."""
    labels: dict[str, list[dict[str, Any]]] = {}
    for item in planned:
        labels.setdefault(item.stage.key, []).append(item.labels)
    return labels
