"""Audits of dememorization depth: membership inference, recovery attacks, certified bounds.

Every audit takes a model and its data (``AuditTarget``, from any stored model or
unlearned-model artifact) and returns a result dataclass with ``table()``,
``to_dict()`` and ``plot(path)``.
"""

from dememo.audit.certify import (
    CertifiedBound,
    CertifyResult,
    Transfer,
    certify,
    theorem1,
    transfer_probability,
)
from dememo.audit.mia import MIAResult, lira_offline, run_mia, svc_attack, threshold_attack
from dememo.audit.montecarlo import loop_metric, noisy_metric
from dememo.audit.recovery import RecoveryConfig, RecoveryResult, recover, recovery_curve, table7_config
from dememo.audit.signals import Signals, model_signals
from dememo.audit.target import AuditSets, AuditTarget

__all__ = [
    "AuditSets", "AuditTarget", "CertifiedBound", "CertifyResult", "MIAResult", "RecoveryConfig",
    "RecoveryResult", "Signals", "Transfer", "certify", "lira_offline", "loop_metric", "model_signals",
    "noisy_metric", "recover", "recovery_curve", "run_mia", "svc_attack", "table7_config", "theorem1",
    "threshold_attack", "transfer_probability",
]  # fmt: skip
