"""Studies: one file per study (its Settings and plan); the registry in base, shared settings in common."""

from dememo.experiments.studies import (  # noqa: F401  (registers the studies)
    interplay,
    interplay_levels,
    llm,
    protect_eval,
    recovery_protected,
)
from dememo.experiments.studies.base import STUDIES, Entry, Planned, Study, register_study

__all__ = ["STUDIES", "Entry", "Planned", "Study", "register_study"]
