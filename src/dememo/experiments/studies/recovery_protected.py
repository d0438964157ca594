"""The recovery-protected study (Figure 9): recovery attacks on victims trained on fully
protected data, next to the clean-trained victim.

Its settings are protect-eval's (Table 3's victims, methods and protection options)
plus the attack's options; ``plan`` is protect-eval's plan with one ``recover`` audit
per victim, so a run after ``reproduce table3`` reuses every protect and train stage.
Without a target class the attack fine-tunes on ``attack_fraction`` (default 10%) of
the clean training split and is scored on the whole test split (FACTS 3.3).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from dememo.audit.jobs import RecoverOptions
from dememo.experiments.stages.audit import audit_stage
from dememo.experiments.studies.base import Planned, Study, register_study
from dememo.experiments.studies.protect_eval import ProtectEval, ProtectEvalSettings


class RecoveryProtectedSettings(ProtectEvalSettings):
    recover: dict[str, Any] = Field(default_factory=dict, description="RecoverOptions without target_class")

    @field_validator("recover")
    @classmethod
    def _recover(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "target_class" in value:
            raise ValueError("recover takes no target_class: Figure 9 attacks on the whole test set")
        RecoverOptions.model_validate(value)
        return value


@register_study
class RecoveryProtected(Study):
    name = "recovery-protected"
    Settings = RecoveryProtectedSettings

    def plan(self, settings: RecoveryProtectedSettings) -> list[Planned]:  # type: ignore[override]
        planned = ProtectEval().plan(settings)
        audits = [
            Planned(audit_stage("recover", item.stage, settings.recover), {**item.labels, "role": "recover"})
            for item in planned
            if item.labels["role"] == "victim"
        ]
        return planned + audits
