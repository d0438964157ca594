"""ROC summaries of a membership score: AUC, TPR at fixed FPR, advantage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from dememo.errors import ConfigError

LOW_FPRS = (0.01, 0.001)


@dataclass
class RocResult:
    """How well ``name``'s score separates members (positives) from non-members."""

    name: str
    auc: float
    tpr_at_fpr: dict[float, float]  # FPR -> TPR (largest TPR with FPR <= that value)
    advantage: float  # max over thresholds of TPR - FPR
    members: int
    nonmembers: int
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)

    def row(self) -> dict[str, object]:
        return {"attack": self.name, "auc": self.auc, "advantage": self.advantage,
                **{f"tpr@{f:g}fpr": t for f, t in self.tpr_at_fpr.items()},
                "members": self.members, "nonmembers": self.nonmembers}  # fmt: skip


def roc_result(name: str, member_scores: np.ndarray, nonmember_scores: np.ndarray) -> RocResult:
    """ROC of scores where larger means 'member'. Needs both kinds of samples."""
    if len(member_scores) == 0 or len(nonmember_scores) == 0:
        raise ConfigError(f"{name}: AUC needs members and non-members (got {len(member_scores)} and "
                          f"{len(nonmember_scores)}); a target set with one class has no ROC")  # fmt: skip
    truth = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    scores = np.r_[member_scores, nonmember_scores].astype(np.float64)
    fpr, tpr, _ = roc_curve(truth, scores)
    at = {f: float(tpr[fpr <= f].max()) if (fpr <= f).any() else 0.0 for f in LOW_FPRS}
    return RocResult(name, float(roc_auc_score(truth, scores)), at, float((tpr - fpr).max()),
                     len(member_scores), len(nonmember_scores), fpr, tpr)  # fmt: skip
