"""Unlearning: remove a forget set's influence from a trained model.

Importing this package registers every method in ``UNLEARNERS``.
"""

from dememo.unlearn import certified, ft, ga, influence, rt, sisa  # noqa: F401  (registers)
from dememo.unlearn.accountant import CertifiedAccountant
from dememo.unlearn.base import UNLEARNERS, Unlearned, UnlearnRecord, make_config, unlearn
from dememo.unlearn.jobs import UnlearnedModel, load_unlearned, unlearn_or_load

__all__ = [
    "UNLEARNERS",
    "CertifiedAccountant",
    "UnlearnRecord",
    "Unlearned",
    "UnlearnedModel",
    "load_unlearned",
    "make_config",
    "unlearn",
    "unlearn_or_load",
]
