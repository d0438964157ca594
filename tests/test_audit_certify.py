"""Certified bounds: coverage at the stated rate, shrinking width, Theorem 1 and 2 semantics,
and batched Monte Carlo equal to the one-model loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from dememo.audit.certify import (
    quantile_lower_bound,
    quantile_upper_bound,
    samples_needed_lower,
    samples_needed_upper,
    shifted_levels,
    theorem1,
    transfer_probability,
)
from dememo.audit.jobs import CertifyOptions, certify_job
from dememo.audit.montecarlo import loop_metric, noisy_metric
from dememo.audit.target import AuditTarget
from dememo.errors import ConfigError
from dememo.models import build_model

ALPHA = 0.05


def coverage(sampler, true_quantile: float, p: float, n: int, reps: int = 600) -> tuple[float, float]:
    rng = np.random.default_rng(n)
    upper_ok, lower_ok = 0, 0
    for _ in range(reps):
        x = sampler(rng, n)
        upper_ok += quantile_upper_bound(x, p, ALPHA) >= true_quantile
        lower_ok += quantile_lower_bound(x, p, ALPHA) <= true_quantile
    return upper_ok / reps, lower_ok / reps


@pytest.mark.parametrize(
    ("name", "sampler", "quantile"),
    [
        ("normal", lambda rng, n: rng.normal(size=n), norm.ppf(0.7)),
        ("discrete accuracy", lambda rng, n: rng.binomial(20, 0.6, n) / 20, None),  # ties
    ],
)
def test_quantile_bounds_cover_at_the_stated_rate(name, sampler, quantile):
    if name == "discrete accuracy":  # 13/20: cdf(12/20) = 0.58 < 0.7 <= cdf(13/20) = 0.75
        quantile = _binomial_quantile(20, 0.6, 0.7)
    up, low = coverage(sampler, quantile, 0.7, n=200)
    # 600 repetitions: a true 95% rate falls below 0.92 with probability < 0.1%
    assert up >= 0.92 and low >= 0.92, (name, up, low)


def _binomial_quantile(trials: int, prob: float, p: float) -> float:
    from scipy.stats import binom

    return float(binom.ppf(p, trials, prob)) / trials


def test_bounds_are_not_trivially_loose_and_shrink_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 1000, 10000):
        w = [quantile_upper_bound(x, 0.7, ALPHA) - quantile_lower_bound(x, 0.7, ALPHA)
             for x in rng.normal(size=(50, n))]  # fmt: skip
        widths.append(np.mean(w))
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[2] < 0.1  # close to the true quantile for large N


def test_abstention_says_how_many_samples_are_needed():
    b = theorem1(np.random.default_rng(0).normal(size=10), q=0.7, eta=0.1, sigma=0.1, alpha=0.01)
    assert b.upper is None and b.needed_n_upper > 10
    x = np.random.default_rng(0).normal(size=b.needed_n_upper)
    assert quantile_upper_bound(x, b.q_upper, 0.01) is not None
    assert quantile_upper_bound(x[:-1], b.q_upper, 0.01) is None
    assert samples_needed_lower(0.3, 0.05) == 9 and samples_needed_upper(0.5, 0.25) == 2
    assert "abstain (needs N >=" in b.row()["upper"]


def test_theorem1_brackets_the_worst_shift_and_lower_holds_with_1_minus_q():
    # metric A(theta) = theta_1 with theta_hat = 0: A(theta_hat + kappa) ~ N(0, sigma^2); the worst
    # shift v = +-eta e_1 moves the q-quantile of A(theta*) to +-eta + sigma Phi^-1(q).
    sigma, eta, q = 0.5, 0.3, 0.8
    b = theorem1(np.random.default_rng(2).normal(0, sigma, 20000), q=q, eta=eta, sigma=sigma, alpha=ALPHA)
    assert b.upper >= eta + sigma * norm.ppf(q) and b.upper == pytest.approx(
        eta + sigma * norm.ppf(q), abs=0.03
    )
    # lower bound: the quantile with P(A(theta*) >= lower) = 1 - q, at the worst shift -eta
    assert b.lower <= -eta + sigma * norm.ppf(q) and b.lower == pytest.approx(
        -eta + sigma * norm.ppf(q), abs=0.03
    )
    assert (b.upper_holds_with, b.lower_holds_with) == (q, pytest.approx(1 - q))
    lo, hi = shifted_levels(q, 0.0, sigma)
    assert lo == hi == pytest.approx(q)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"sigma": 0.0}, "sigma"), ({"eta": -1.0}, "eta"), ({"q": 1.0}, "q must"), ({"alpha": 0.0}, "alpha")],
)
def test_bad_parameters_are_named(kwargs, message):
    args = {"q": 0.7, "eta": 0.1, "sigma": 0.1, "alpha": 0.05} | kwargs
    with pytest.raises(ConfigError, match=message):
        theorem1(np.zeros(5), **args)


def test_transfer_probability_is_over_reference_runs_and_honest_when_vacuous():
    center = nn.Linear(4, 2)
    near = []
    for i in range(20):
        ref = nn.Linear(4, 2)
        ref.load_state_dict(center.state_dict())
        with torch.no_grad():
            ref.weight.add_(
                0.01 * (i % 10) * torch.ones_like(ref.weight) / 8**0.5
            )  # distance 0.01 * (i % 10)
        near.append(ref)
    t = transfer_probability(center, near, eta=0.045, epsilon=0.1, zeta=0.01)
    assert t.within == 10 and t.p_hat == 0.5 and t.p_low < 0.5 < t.p_high
    assert t.probability == pytest.approx(np.exp(-0.1) * (t.p_low - 0.01))
    assert not t.vacuous and t.theorem1_eta == pytest.approx(0.09)
    far = transfer_probability(center, [nn.Linear(4, 2) for _ in range(5)], eta=1e-4, epsilon=0.1, zeta=0.01)
    assert far.vacuous and far.probability == 0.0 and "vacuous" in far.note


def test_batched_monte_carlo_equals_the_one_model_loop(digits):
    torch.manual_seed(0)
    model = build_model("tinycnn", 1, 10, (8, 8))
    data = digits.test.subset(range(100))
    batched = noisy_metric(model, data, sigma=0.05, n=10, chunk=4, seed=3)
    looped = loop_metric(model, data, sigma=0.05, n=10, chunk=4, seed=3)
    # vmap'd and plain convolutions round differently (more so with AVX-512 kernels): the
    # continuous metric agrees to float32 precision, accuracy up to a near-tie argmax flip
    assert torch.allclose(
        noisy_metric(model, data, sigma=0.05, n=10, chunk=4, seed=3, metric="confidence"),
        loop_metric(model, data, sigma=0.05, n=10, chunk=4, seed=3, metric="confidence"),
        atol=1e-5,
    )
    assert (batched - looped).abs().max() <= 1 / len(data) + 1e-12
    assert batched.std() > 0  # the noise does change the metric
    assert not torch.equal(batched, noisy_metric(model, data, sigma=0.05, n=10, chunk=4, seed=4))
    with pytest.raises(ConfigError, match="sigma"):
        noisy_metric(model, data, sigma=0.0, n=2)


def test_the_default_audit_certify_options_do_not_abstain_even_at_theorem_2s_radius():
    options = CertifyOptions()
    samples = np.random.default_rng(0).random(options.samples)
    for eta in [*options.etas, 2 * max(options.etas)]:
        bound = theorem1(samples, q=options.q, eta=eta, sigma=options.sigma, alpha=options.alpha)
        assert not bound.abstained, (eta, bound.row())


def test_theorem_2_reports_the_theorem_1_row_at_twice_eta(digits):
    model = build_model("mlp", 1, digits.train.num_classes, digits.train.image_size)
    target = AuditTarget(model, digits.train, digits.test, "m", {"dataset": "digits"})
    options = CertifyOptions(samples=16, etas=(0.0, 0.01), sigma=0.01, chunk=8)
    result = certify_job(target, [target], options, torch.device("cpu"))
    assert [b.eta for b in result.bounds] == [0.0, 0.01, 0.02]
    assert "Theorem 1 row at eta 0.02" in result.notes[-1]
    assert [b.eta for b in certify_job(target, [], options, torch.device("cpu")).bounds] == [0.0, 0.01]
