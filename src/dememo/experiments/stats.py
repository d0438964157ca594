"""The interval conventions of the reports (95% throughout).

- One model's accuracy or member rate on ``n`` samples: the Wilson score interval of the
  binomial proportion (``wilson``; k = round(rate x n) successes). It behaves at 0 and 1
  where the normal approximation does not.
- A quantity over seeds (each seed a fresh victim, protection, unlearning and audit): the
  mean, the sample standard deviation (ddof 1) and the Student t-interval
  mean +/- t(0.975, m - 1) x std / sqrt(m) over the m seeds (``t_interval``); one seed gives
  no interval (None).

``Estimate`` carries a value with its interval and sample size, and ``describe`` writes it
the way every table cell does: ``71.20 [65.10, 77.30] n=100`` for one model, ``71.20 ±2.10
[65.10, 77.30] 3 seeds`` over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval: over ``seeds`` runs (t) or on ``n`` samples of one model (Wilson)."""

    value: float
    low: float | None = None
    high: float | None = None
    std: float | None = None  # across seeds
    seeds: int = 1
    n: int | None = None  # evaluation samples (one model)

    def describe(self, digits: int = 2, scale: float = 1.0) -> str:
        def fmt(x: float) -> str:
            return f"{x * scale:.{digits}f}"

        text = fmt(self.value)
        if self.std is not None and self.seeds > 1:
            text += f" ±{fmt(self.std)}"
        if self.low is not None and self.high is not None:
            text += f" [{fmt(self.low)}, {fmt(self.high)}]"
        if self.seeds > 1:
            text += f" {self.seeds} seeds"
        if self.n is not None:
            text += f" n={self.n}"
        return text


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (as fractions)."""
    if n <= 0:
        raise ValueError("wilson needs n >= 1")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def t_interval(
    values: Sequence[float], level: float = LEVEL
) -> tuple[float, float, float | None, float | None]:
    """(mean, std, low, high) of values across seeds: the Student t-interval of the mean
    (std with ddof 1); std, low and high are None for fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("t_interval needs at least one value")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None, None, None  # type: ignore[return-value]
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def rate_estimate(rate: float, n: int | None, percent: bool = False) -> Estimate:
    """One model's rate (a fraction, or % with ``percent``) with its Wilson interval when n is known."""
    if n is None or n <= 0:
        return Estimate(rate)
    unit = 100.0 if percent else 1.0
    low, high = wilson(round(rate / unit * n), n)
    return Estimate(rate, low * unit, high * unit, n=n)


def seed_estimate(values: Sequence[float], n: int | None = None, percent: bool = False) -> Estimate | None:
    """Values of one quantity across seeds: mean, std and t-interval; one seed falls back to
    the Wilson interval on its n samples (when the quantity is a rate and n is known)."""
    if not values:
        return None
    if len(values) == 1:
        return rate_estimate(values[0], n, percent) if n else Estimate(values[0])
    mean, std, low, high = t_interval(values)
    return Estimate(mean, low, high, std, seeds=len(values), n=n)


def describe(
    values: Sequence[float] | None, n: int | None = None, percent: bool = True, digits: int = 2
) -> str:
    """A table cell: '–' for no value, else the estimate with its interval and sample size."""
    estimate = seed_estimate(list(values or ()), n, percent)
    return "–" if estimate is None else estimate.describe(digits)
