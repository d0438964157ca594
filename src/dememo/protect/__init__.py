"""Unlearnability: protectors that perturb data before release, one file per method."""

from dememo.protect import ar, cuda, lsp, ops, pue, tap, tue, ue  # noqa: F401  (registers methods)
from dememo.protect.base import PROTECTORS, ProtectConfig, Protector, protect, register_protector
from dememo.protect.perturbation import Perturbation

__all__ = ["PROTECTORS", "Perturbation", "ProtectConfig", "Protector", "protect", "register_protector"]
