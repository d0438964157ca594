"""The interplay-levels study: several interplay specs at once (Table 5 needs the subset
and the class level).

A scale names the interplay specs and the scale of theirs to plan; the plan is the
union of theirs, so every stage is shared with a reproduction of those specs (a rerun
of one after the other reuses everything).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dememo.experiments.studies.base import Planned, Study, register_study
from dememo.experiments.studies.interplay import Interplay, InterplaySettings


class InterplayLevelsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notes: str = ""
    specs: list[str] = Field(
        min_length=1, description="interplay specs, e.g. interplay-class, interplay-subset"
    )
    scale: str = Field(description="the scale of those specs to plan (smoke, cpu or paper)")

    @field_validator("specs")
    @classmethod
    def _interplay_specs(cls, value: list[str]) -> list[str]:
        from dememo.experiments.spec import load_spec

        for name in value:
            if load_spec(name).study != Interplay.name:
                raise ValueError(f"spec {name!r} is not an interplay spec")
        return value

    def blocks(self) -> list[InterplaySettings]:
        """The interplay settings of every named spec at ``scale``."""
        from dememo.experiments.spec import load_spec

        return [load_spec(name).settings(self.scale) for name in self.specs]  # type: ignore[misc]


@register_study
class InterplayLevels(Study):
    name = "interplay-levels"
    Settings = InterplayLevelsSettings

    def plan(self, settings: InterplayLevelsSettings) -> list[Planned]:  # type: ignore[override]
        return [planned for block in settings.blocks() for planned in Interplay().plan(block)]
