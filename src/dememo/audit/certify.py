"""Certified depth bounds (SoK section 7; FACTS 4.1-4.2).

Theorem 1: for any theta* ~ N(theta_hat + v, sigma^2 I) with ||v|| <= eta, the
q-quantile of the metric A(theta*) lies between the q_lower- and q_upper-quantiles
of A(theta_hat + kappa), kappa ~ N(0, sigma^2 I), where
q_upper = Phi(Phi^-1(q) + eta/sigma) and q_lower = Phi(Phi^-1(q) - eta/sigma).
So A(theta*) <= upper with probability >= q and A(theta*) >= lower with
probability >= 1 - q (not q: FACTS 4.1). The quantiles are estimated from N
Monte-Carlo samples by binomial order statistics, valid with confidence
1 - alpha; with too few samples a side abstains and says how many it needs.

Theorem 2: a model theta' that is (epsilon, zeta)-indistinguishable from a
reference mechanism (retraining) inherits the bounds with probability at least
max{0, e^-epsilon (Pr_theta[||theta - theta_hat|| <= eta] - zeta)}, Pr over the
reference mechanism; estimated from its runs with a Clopper-Pearson interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.stats import beta, binom, norm
from torch import nn

from dememo.audit.plots import new_axes, save_figure
from dememo.errors import ConfigError


def check_probability(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{name} must lie in (0, 1), got {value}")


def shifted_levels(q: float, eta: float, sigma: float) -> tuple[float, float]:
    """(q_lower, q_upper) = Phi(Phi^-1(q) -/+ eta / sigma)."""
    check_probability("q", q)
    if sigma <= 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    if eta < 0:
        raise ConfigError(f"eta must be >= 0, got {eta}")
    z = norm.ppf(q)
    return float(norm.cdf(z - eta / sigma)), float(norm.cdf(z + eta / sigma))


def samples_needed_upper(p: float, alpha: float) -> int | None:
    """Smallest N whose largest sample bounds the p-quantile from above w.p. 1 - alpha
    (None: no N does, p rounds to 1)."""
    return None if p >= 1 else max(1, math.ceil(math.log(alpha) / math.log(p)))


def samples_needed_lower(p: float, alpha: float) -> int | None:
    """Smallest N whose smallest sample bounds the p-quantile from below w.p. 1 - alpha
    (None: no N does, p rounds to 0)."""
    return None if p <= 0 else max(1, math.ceil(math.log(alpha) / math.log1p(-p)))


def quantile_upper_bound(samples: np.ndarray, p: float, alpha: float) -> float | None:
    """An order statistic >= the p-quantile inf{t: F(t) >= p} with probability >= 1 - alpha
    (also for discrete metrics); None (abstain) when N is too small."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    ks = np.arange(1, n + 1)
    ok = binom.cdf(ks - 1, n, p) >= 1 - alpha  # P(X_(k) >= xi_p) >= P(Bin(n, p) <= k - 1)
    return float(x[ks[ok][0] - 1]) if ok.any() else None


def quantile_lower_bound(samples: np.ndarray, p: float, alpha: float) -> float | None:
    """An order statistic <= the p-quantile sup{t: F(t) <= p} with probability >= 1 - alpha;
    None (abstain) when N is too small."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    js = np.arange(1, n + 1)
    ok = binom.cdf(js - 1, n, p) <= alpha  # P(X_(j) > xi_p) <= P(Bin(n, p) <= j - 1)
    return float(x[js[ok][-1] - 1]) if ok.any() else None


@dataclass
class CertifiedBound:
    """Theorem 1 at one eta. ``upper`` holds w.p. >= q, ``lower`` w.p. >= 1 - q, over the
    noise of theta*; both estimates hold with confidence 1 - alpha over the Monte Carlo."""

    eta: float
    sigma: float
    q: float
    alpha: float
    n: int
    q_lower: float
    q_upper: float
    upper: float | None
    lower: float | None
    upper_holds_with: float
    lower_holds_with: float
    needed_n_upper: int | None
    needed_n_lower: int | None

    @property
    def abstained(self) -> bool:
        return self.upper is None or self.lower is None

    def row(self) -> dict[str, object]:
        def show(value, needed):
            if value is not None:
                return f"{value:.4f}"
            return f"abstain (needs N >= {needed})" if needed else "abstain (no N suffices)"

        return {"eta": self.eta, "lower": show(self.lower, self.needed_n_lower),
                "upper": show(self.upper, self.needed_n_upper), "q_lower": self.q_lower,
                "q_upper": self.q_upper, "N": self.n}  # fmt: skip


def theorem1(samples: np.ndarray | torch.Tensor, *, q: float, eta: float, sigma: float,
             alpha: float) -> CertifiedBound:  # fmt: skip
    """Theorem 1's bounds from Monte-Carlo samples of A(theta_hat + kappa)."""
    check_probability("alpha", alpha)
    q_lower, q_upper = shifted_levels(q, eta, sigma)
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ConfigError("theorem1 needs a non-empty 1-d array of metric samples")
    return CertifiedBound(
        eta, sigma, q, alpha, len(values), q_lower, q_upper,
        quantile_upper_bound(values, q_upper, alpha), quantile_lower_bound(values, q_lower, alpha),
        q, 1 - q, samples_needed_upper(q_upper, alpha), samples_needed_lower(q_lower, alpha),
    )  # fmt: skip


def flat_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten().cpu() for p in model.parameters() if p.requires_grad])


@dataclass
class Transfer:
    """Theorem 2 from reference-mechanism runs (e.g. retraining with other seeds)."""

    eta: float
    epsilon: float
    zeta: float
    alpha: float
    runs: int
    within: int  # runs with ||theta - theta_hat|| <= eta
    p_hat: float
    p_low: float
    p_high: float
    probability: float  # max{0, e^-eps (p_low - zeta)}: holds with confidence 1 - alpha
    point_estimate: float  # the same with p_hat
    distances: list[float]
    theorem1_eta: float  # radius the bounds must be computed at: 2 eta (FACTS 4.2)
    vacuous: bool
    note: str


def transfer_probability(
    center: nn.Module,
    references: Sequence[nn.Module],
    *,
    eta: float,
    epsilon: float,
    zeta: float,
    alpha: float = 0.05,
) -> Transfer:
    """Theorem 2's transfer probability, with Pr[||theta - theta_hat|| <= eta] estimated
    (Clopper-Pearson, two-sided 1 - alpha) from the reference mechanism's runs."""
    if eta < 0:
        raise ConfigError(f"eta must be >= 0, got {eta}")
    if epsilon < 0:
        raise ConfigError(f"epsilon must be >= 0, got {epsilon}")
    check_probability("zeta", zeta)
    check_probability("alpha", alpha)
    if not references:
        raise ConfigError("Theorem 2 needs runs of the reference mechanism (e.g. retraining seeds)")
    theta_hat = flat_weights(center)
    distances = []
    for ref in references:
        theta = flat_weights(ref)
        if theta.shape != theta_hat.shape:
            raise ConfigError("reference runs must have the same architecture as the certified model")
        distances.append(float((theta - theta_hat).norm()))
    n, k = len(distances), sum(d <= eta for d in distances)
    p_low = float(beta.ppf(alpha / 2, k, n - k + 1)) if k > 0 else 0.0
    p_high = float(beta.ppf(1 - alpha / 2, k + 1, n - k)) if k < n else 1.0
    scale = math.exp(-epsilon)
    probability = max(0.0, scale * (p_low - zeta))
    point = max(0.0, scale * (k / n - zeta))
    vacuous = probability == 0.0
    note = ("vacuous: no guarantee transfers (the reference runs lie outside the eta-ball, "
            f"median distance {np.median(distances):.3g} vs eta {eta:g})" if vacuous else
            f"the Theorem 1 bounds at radius 2*eta = {2 * eta:g} transfer with probability "
            f">= {probability:.3f} (confidence {1 - alpha:g})")  # fmt: skip
    return Transfer(eta, epsilon, zeta, alpha, n, k, k / n, p_low, p_high, probability, point,
                    distances, 2 * eta, vacuous, note)  # fmt: skip


@dataclass
class CertifyResult:
    """Theorem 1 bounds over an eta sweep (same samples), and optionally Theorem 2."""

    metric: str
    target_set: str
    clean_value: float  # the metric at theta_hat itself
    samples: list[float]
    bounds: list[CertifiedBound]
    transfer: Transfer | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> list[dict[str, object]]:
        return [b.row() for b in self.bounds]

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "target_set": self.target_set, "clean_value": self.clean_value,
                "samples": self.samples, "bounds": [asdict(b) for b in self.bounds],
                "transfer": asdict(self.transfer) if self.transfer else None,
                "notes": self.notes}  # fmt: skip

    def plot(self, path) -> None:
        b0 = self.bounds[0]
        figure, axes = new_axes(f"Theorem 1 bounds on {self.metric} ({self.target_set}); sigma {b0.sigma:g}, "
                                f"q {b0.q:g}, N {b0.n}, 1-alpha {1 - b0.alpha:g}", "eta",
                                self.metric)  # fmt: skip
        etas = [b.eta for b in self.bounds]
        nan = float("nan")
        axes.plot(
            etas,
            [b.upper if b.upper is not None else nan for b in self.bounds],
            "v-",
            label=f"upper (holds w.p. >= {b0.q:g})",
        )
        axes.plot(
            etas,
            [b.lower if b.lower is not None else nan for b in self.bounds],
            "^-",
            label=f"lower (holds w.p. >= {1 - b0.q:g})",
        )
        axes.axhline(self.clean_value, color="k", lw=0.8, ls="--", label="at theta_hat")
        axes.legend(fontsize=7)
        save_figure(figure, path)


def certify(samples: torch.Tensor | np.ndarray, etas: Sequence[float], *, metric: str, target_set: str,
            clean_value: float, q: float, sigma: float, alpha: float) -> CertifyResult:  # fmt: skip
    """Theorem 1 at every eta from one set of Monte-Carlo samples."""
    if not etas:
        raise ConfigError("certify needs at least one eta")
    values = np.asarray(samples, dtype=np.float64)
    bounds = [theorem1(values, q=q, eta=e, sigma=sigma, alpha=alpha) for e in etas]
    return CertifyResult(metric, target_set, clean_value, values.tolist(), bounds)
