"""Membership inference: the paper's SVC attack, per-class thresholds, offline LiRA.

Which set plays which role is explicit in every function:
- ``svc_attack`` (paper-faithful, FACTS 2.2): an RBF SVC per signal is *fit* on
  shadow members (retain-set training samples, label 1) against shadow
  non-members (test samples, label 0); the reported number is the share of the
  *target* set it predicts "member".
- ``threshold_attack``: per-class thresholds are *calibrated* on one half of the
  members and non-members and the other half is *scored* (ROC AUC, TPR at low FPR).
- ``lira_offline``: reference models that saw neither set give each sample's
  non-member distribution (Carlini et al. 2022, offline LiRA, global variance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logit
from sklearn.svm import SVC

from dememo.audit.plots import new_axes, save_figure
from dememo.audit.roc import RocResult, roc_result
from dememo.audit.signals import MEMBER_SIGN, SCALAR_SIGNALS, Signals
from dememo.errors import ConfigError

PAPER_SIGNALS = ("correctness", "probability", "entropy")  # Tables 18-25: corr, prob, entro
SVC_SIGNALS = ("correctness", "confidence", "probability", "entropy", "modified_entropy", "loss")


@dataclass
class MIAResult:
    """Member rates of the paper's SVC attack and ROC summaries of the stronger attacks.

    ``svc_rates``: signal -> share of the target set the SVC predicts member;
    ``unseen_rates``: the same SVC's rate on unseen test samples held out of its fit (the
    rate a non-member gets: a target rate means little without it); ``shadow``: what the
    SVC was fit on (sample counts, pixels, selection)."""

    target: str
    svc_rates: dict[str, float]
    rocs: list[RocResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unseen_rates: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, object] = field(default_factory=dict)

    def table(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = [
            {"attack": f"svc/{s}", "member_rate": r, "unseen_rate": self.unseen_rates.get(s)}
            for s, r in self.svc_rates.items()
        ]
        return rows + [r.row() for r in self.rocs]

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "svc_rates": self.svc_rates, "unseen_rates": self.unseen_rates,
                "shadow": self.shadow, "rocs": [r.row() for r in self.rocs], "notes": self.notes}  # fmt: skip

    def plot(self, path) -> None:
        """ROC curves on log-log axes (the low-FPR region is what matters)."""
        figure, axes = new_axes(f"membership inference: {self.target}", "false positive rate",
                                "true positive rate")  # fmt: skip
        for r in self.rocs:
            axes.plot(np.maximum(r.fpr, 1e-4), np.maximum(r.tpr, 1e-4), label=f"{r.name} (AUC {r.auc:.3f})")
        axes.plot([1e-4, 1], [1e-4, 1], "k--", lw=0.8, label="chance")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.legend(fontsize=7)
        save_figure(figure, path)


def _balanced(rng: np.random.Generator, n_first: int, n_second: int, cap: int):
    size = min(n_first, n_second, cap)
    return rng.choice(n_first, size, replace=False), rng.choice(n_second, size, replace=False)


@dataclass
class ShadowSVC:
    """The paper's attack model: per signal, an RBF SVC (C=3, gamma='auto') fit on shadow
    members (label 1) against shadow non-members (label 0)."""

    classifiers: dict[str, SVC]
    members: int  # shadow samples the SVCs were fit on, each side
    nonmembers: int

    @classmethod
    def fit(
        cls,
        shadow_members: Signals,
        shadow_nonmembers: Signals,
        signals: Sequence[str] = PAPER_SIGNALS,
        *,
        max_shadow: int | None = 2000,
        seed: int = 0,
    ) -> ShadowSVC:
        """``max_shadow``: equally many random samples a side, at most that many; None: every
        sample given (the caller chose them, e.g. the official selection of ``mia_job``)."""
        if max_shadow is None:
            keep_in, keep_out = np.arange(len(shadow_members)), np.arange(len(shadow_nonmembers))
        else:
            rng = np.random.default_rng(seed)
            keep_in, keep_out = _balanced(rng, len(shadow_members), len(shadow_nonmembers), max_shadow)
        if len(keep_in) == 0 or len(keep_out) == 0:
            raise ConfigError("svc_attack: needs shadow members and shadow non-members")
        classifiers = {}
        for name in signals:
            x = np.r_[shadow_members.features(name)[keep_in], shadow_nonmembers.features(name)[keep_out]]
            y = np.r_[np.ones(len(keep_in)), np.zeros(len(keep_out))]
            classifiers[name] = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
        return cls(classifiers, len(keep_in), len(keep_out))

    def rates(self, data: Signals) -> dict[str, float]:
        """Per signal, the share of ``data`` predicted member."""
        if len(data) == 0:
            raise ConfigError("svc_attack: the target set is empty")
        return {name: float(c.predict(data.features(name)).mean()) for name, c in self.classifiers.items()}


def svc_attack(
    shadow_members: Signals,
    shadow_nonmembers: Signals,
    target: Signals,
    signals: Sequence[str] = PAPER_SIGNALS,
    *,
    max_shadow: int | None = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """The paper's attack: per signal, the share of ``target`` an RBF SVC (C=3, gamma='auto')
    fit on shadow members and non-members (``ShadowSVC.fit``) predicts member."""
    if len(target) == 0:
        raise ConfigError("svc_attack: the target set is empty")
    return ShadowSVC.fit(shadow_members, shadow_nonmembers, signals, max_shadow=max_shadow, seed=seed).rates(
        target
    )


def _halves(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def threshold_attack(
    members: Signals, nonmembers: Signals, signal: str = "modified_entropy", *, seed: int = 0
) -> RocResult:
    """Per-class threshold attack (Song & Mittal 2021): the threshold of each class is the
    one that best separates the *calibration* halves (balanced accuracy); the *scored*
    halves are ranked by oriented signal minus their class's threshold."""
    if signal not in SCALAR_SIGNALS:
        raise ConfigError(f"threshold attacks need a scalar signal; valid: {', '.join(SCALAR_SIGNALS)}")
    rng = np.random.default_rng(seed)
    cal_in, score_in = _halves(rng, len(members))
    cal_out, score_out = _halves(rng, len(nonmembers))
    value_in = MEMBER_SIGN[signal] * members.get(signal)
    value_out = MEMBER_SIGN[signal] * nonmembers.get(signal)
    classes = max(members.probs.shape[1], 1)
    thresholds = np.zeros(classes)
    for c in range(classes):
        a = value_in[cal_in][members.labels[cal_in] == c]
        b = value_out[cal_out][nonmembers.labels[cal_out] == c]
        thresholds[c] = best_threshold(a, b)
    scores_in = value_in[score_in] - thresholds[members.labels[score_in]]
    scores_out = value_out[score_out] - thresholds[nonmembers.labels[score_out]]
    return roc_result(f"class-threshold/{signal}", scores_in, scores_out)


def best_threshold(member_values: np.ndarray, nonmember_values: np.ndarray) -> float:
    """The cut t maximizing balanced accuracy of 'member iff value >= t' (0 without data)."""
    if len(member_values) == 0 or len(nonmember_values) == 0:
        return 0.0
    candidates = np.unique(np.r_[member_values, nonmember_values])
    tpr = (member_values[None, :] >= candidates[:, None]).mean(1)
    tnr = (nonmember_values[None, :] < candidates[:, None]).mean(1)
    return float(candidates[np.argmax(tpr + tnr)])


def logit_confidence(signals: Signals) -> np.ndarray:
    """log(p_y / (1 - p_y)), the statistic LiRA models as Gaussian."""
    return logit(np.clip(signals.true_prob, 1e-12, 1 - 1e-12))


def lira_offline(
    target_members: Signals,
    target_nonmembers: Signals,
    reference_members: Sequence[Signals],
    reference_nonmembers: Sequence[Signals],
) -> RocResult:
    """Offline LiRA: ``reference_*`` are the same two sets scored by reference models that
    trained on neither. Score = (phi_target - mean_ref) / pooled std of the references."""
    if not reference_members or len(reference_members) != len(reference_nonmembers):
        raise ConfigError("lira_offline needs at least one reference model for both sets")
    phi_in = logit_confidence(target_members)
    phi_out = logit_confidence(target_nonmembers)
    ref_in = np.stack([logit_confidence(s) for s in reference_members])
    ref_out = np.stack([logit_confidence(s) for s in reference_nonmembers])
    reference = np.concatenate([ref_in, ref_out], axis=1)
    spread = reference.std(axis=0).mean() if len(reference) > 1 else reference.std()
    spread = max(float(spread), 1e-6)
    return roc_result(f"lira-offline/{len(reference_members)}refs",
                      (phi_in - ref_in.mean(0)) / spread, (phi_out - ref_out.mean(0)) / spread)  # fmt: skip


def paper_flags(rate: float, before: float, retrained: float) -> dict[str, object]:
    """Tables 18-25 conventions for one cell: the up-arrow (above both Before and RT)
    and Figures 5-8's gap prob(unlearned) - prob(RT) (FACTS 2.4-2.5)."""
    return {"rate": rate, "up_arrow": rate > before and rate > retrained, "gap_vs_rt": rate - retrained}


def is_damaged(accuracy: float, chance: float, factor: float = 1.5) -> bool:
    """Whether a model is 'severely damaged' and its MIA cell omitted ('-'), FACTS 2.4.
    The paper gives no threshold; dememo's choice: accuracy below ``factor`` x chance."""
    return accuracy < factor * chance


def paper_table(
    rates: dict[str, dict[str, float]],
    accuracies: dict[str, float],
    chance: float,
    *,
    before: str = "Before",
    retrained: str = "RT",
    signals: Sequence[str] = PAPER_SIGNALS,
) -> list[dict[str, object]]:
    """Tables 18-25 rows: per model (name -> SVC member rate per signal on the target set),
    '-' for damaged models (``accuracies``: e.g. test accuracy), an up-arrow where a rate is
    above both Before and RT, and the Figures 5-8 gap of the probability signal vs RT."""
    rows = []
    for name, by_signal in rates.items():
        row: dict[str, object] = {"model": name}
        damaged = name not in (before, retrained) and is_damaged(accuracies[name], chance)
        for signal in signals:
            rate = by_signal[signal]
            flags = paper_flags(rate, rates[before][signal], rates[retrained][signal])
            mark = " ↑" if flags["up_arrow"] and name not in (before, retrained) else ""
            row[signal] = "-" if damaged else f"{rate:.4f}{mark}"
        gap = by_signal["probability"] - rates[retrained]["probability"]
        row["gap prob vs RT"] = "-" if damaged else f"{gap:+.4f}"
        rows.append(row)
    return rows


def run_mia(
    members: Signals,
    nonmembers: Signals,
    shadow_members: Signals,
    shadow_nonmembers: Signals,
    *,
    name: str,
    references: Sequence[tuple[Signals, Signals]] = (),
    svc_signals: Sequence[str] = SVC_SIGNALS,
    threshold_signals: Sequence[str] = ("modified_entropy", "loss", "confidence"),
    max_shadow: int | None = 2000,
    seed: int = 0,
) -> MIAResult:
    """All attacks on one model. ``members`` is the target set (the SVC's member rate is
    reported on it and it is the positive class of every ROC); ``nonmembers`` are unseen
    samples of the same classes, not among the shadow non-members (the negatives of every
    ROC, and the SVC's unseen rate). ``max_shadow``: as in ``ShadowSVC.fit``."""
    svc = ShadowSVC.fit(shadow_members, shadow_nonmembers, svc_signals, max_shadow=max_shadow, seed=seed)
    result = MIAResult(name, svc.rates(members), unseen_rates=svc.rates(nonmembers),
                       shadow={"members": svc.members, "nonmembers": svc.nonmembers})  # fmt: skip
    result.notes.append(
        f"svc: fit on {svc.members} shadow members (retain, train) vs {svc.nonmembers} shadow "
        "non-members (test samples); scored on the target set and on unseen test samples of its "
        "classes held out of the fit (unseen_rates: the rate a non-member gets)"
    )
    result.notes.append(
        "class thresholds: calibrated on a random half of target and unseen samples, "
        "scored (ROC) on the other half"
    )
    for signal in threshold_signals:
        result.rocs.append(threshold_attack(members, nonmembers, signal, seed=seed))
    if references:
        result.rocs.append(lira_offline(members, nonmembers, [r[0] for r in references],
                                        [r[1] for r in references]))  # fmt: skip
    return result
