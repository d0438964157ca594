"""Stage kinds of the experiment graph; importing this package registers them."""

from dememo.experiments.stages import audit, protect, train, unlearn  # noqa: F401  (registers the kinds)
from dememo.experiments.stages.base import (
    STAGE_KINDS,
    Resources,
    Stage,
    StageContext,
    StageKind,
    StageOutput,
    register_stage_kind,
)

__all__ = ["STAGE_KINDS", "Resources", "Stage", "StageContext", "StageKind", "StageOutput",
           "register_stage_kind"]  # fmt: skip
