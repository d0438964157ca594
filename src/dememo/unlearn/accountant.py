"""The (epsilon, zeta) accounting of certified noisy fine-tuning (Koloskova et al., ICML
2025; the SoK paper's App. C.2, Eq. 15):

    sigma^2 = 9 log(1/zeta) / (eps^2 T) * (C0 + C1 gamma T)^2

Kept apart from the optimizer, as Opacus keeps its accountants apart from its DP
optimizer. Solving Eq. 15 for T has zero or two roots: (C0 + a T)^2 / T (a = C1 gamma)
is smallest at T* = C0 / a, so no T exists below the minimum noise
sigma_min^2 = 36 log(1/zeta) C0 a / eps^2, and two roots exist above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dememo.errors import ConfigError


def check_privacy(epsilon: float, zeta: float) -> None:
    """The theorem's range: zeta in (0, 1) and epsilon in (0, 3 log(1/zeta))."""
    if not 0 < zeta < 1:
        raise ConfigError(f"certified: zeta must lie in (0, 1), got {zeta}")
    bound = 3 * math.log(1 / zeta)
    if not 0 < epsilon < bound:
        raise ConfigError(
            f"certified: epsilon must lie in (0, 3 log(1/zeta)) = (0, {bound:.4g}), got {epsilon}"
        )


@dataclass(frozen=True)
class CertifiedAccountant:
    """Converts between (epsilon, zeta) and (sigma, T) for radii C0, C1 and step size gamma."""

    c0: float
    c1: float
    gamma: float

    def __post_init__(self) -> None:
        for name in ("c0", "c1", "gamma"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"certified: {name} must be positive, got {getattr(self, name)}")

    def sigma(self, epsilon: float, zeta: float, steps: int) -> float:
        """The noise std that Eq. 15 requires for T = ``steps``."""
        check_privacy(epsilon, zeta)
        if steps < 1:
            raise ConfigError(f"certified: T must be at least 1, got {steps}")
        drift = self.c0 + self.c1 * self.gamma * steps
        return math.sqrt(9 * math.log(1 / zeta) / (epsilon**2 * steps)) * drift

    def epsilon(self, sigma: float, zeta: float, steps: int) -> float:
        """The epsilon that noise ``sigma`` over ``steps`` steps certifies (Eq. 15 for eps)."""
        drift = self.c0 + self.c1 * self.gamma * steps
        return math.sqrt(9 * math.log(1 / zeta) / steps) * drift / sigma

    def min_sigma(self, epsilon: float, zeta: float) -> float:
        """The least noise for which some T satisfies Eq. 15 (at T* = C0 / (C1 gamma))."""
        check_privacy(epsilon, zeta)
        return math.sqrt(36 * math.log(1 / zeta) * self.c0 * self.c1 * self.gamma) / epsilon

    def steps(self, epsilon: float, zeta: float, sigma: float) -> tuple[float, ...]:
        """The real roots T of Eq. 15 for this sigma: () below min_sigma, else (low, high)
        (one root when sigma is exactly the minimum)."""
        check_privacy(epsilon, zeta)
        a = self.c1 * self.gamma
        k = sigma**2 * epsilon**2 / (9 * math.log(1 / zeta))
        disc = k * (k - 4 * self.c0 * a)
        if disc < -1e-12 * k * k:  # below the minimum (beyond rounding at the minimum itself)
            return ()
        root = math.sqrt(max(disc, 0.0))
        low, high = (k - 2 * self.c0 * a - root) / (2 * a * a), (k - 2 * self.c0 * a + root) / (2 * a * a)
        return (low,) if root == 0 else (low, high)

    def integer_steps(self, epsilon: float, zeta: float, sigma: float) -> int:
        """The fewest whole steps T >= 1 at which ``sigma`` certifies (epsilon, zeta).

        Eq. 15 holds with equality at a root; between the roots the given sigma is more
        than required, so any integer T in [low, high] certifies. Raises ConfigError
        naming the minimum sigma when no such T exists.
        """
        roots = self.steps(epsilon, zeta, sigma)
        if roots:
            low, high = roots[0], roots[-1]
            t = max(1, math.ceil(low - 1e-9))
            if t <= high + 1e-9:
                return t
        raise ConfigError(
            f"certified: no number of steps T >= 1 certifies (eps={epsilon}, zeta={zeta}) with sigma "
            f"{sigma:.4g}; sigma must be at least {self.min_sigma(epsilon, zeta):.4g} "
            f"(C0={self.c0}, C1={self.c1}, gamma={self.gamma})"
        )
