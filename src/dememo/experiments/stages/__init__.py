"""Stage kinds: one file per kind on the protocol in base; importing this package registers them."""

from dememo.experiments.stages import (  # noqa: F401  (registers the kinds)
    audit,
    lm_finetune,
    lm_recover,
    lm_unlearn,
    protect,
    train,
    unlearn,
)
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
