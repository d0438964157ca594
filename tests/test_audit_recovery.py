"""Recovery attack: the projection keeps ||theta - theta_0|| <= eta, leaves interior points
alone, eta = 0 is a no-op, the sphere mode lands on the sphere; attack/eval data disjoint."""

from __future__ import annotations

import pytest
import torch

from dememo.audit.recovery import (
    RecoveryCurve,
    project_,
    radius_reached,
    recover,
    recovery_curve,
    table7_config,
    weight_distance,
)
from dememo.errors import ConfigError, DataError
from dememo.models import build_model
from dememo.train import accuracy


def test_projection_ball_and_sphere():
    start = [torch.zeros(3), torch.zeros(2, 2)]
    inside = [torch.tensor([0.1, 0.0, 0.0]), torch.zeros(2, 2)]
    before = [p.clone() for p in inside]
    project_(inside, start, 1.0, "ball")
    assert all(torch.equal(a, b) for a, b in zip(inside, before, strict=True))  # interior: unmoved
    outside = [torch.tensor([3.0, 0.0, 0.0]), torch.full((2, 2), 2.0)]
    direction = [p / weight_distance(outside, start) for p in outside]
    assert project_(outside, start, 1.0, "ball") == pytest.approx(1.0)
    assert all(torch.allclose(p, d) for p, d in zip(outside, direction, strict=True))  # radial
    inner = [torch.tensor([0.1, 0.0, 0.0]), torch.zeros(2, 2)]
    assert project_(inner, start, 1.0, "sphere") == pytest.approx(1.0)  # pushed out to the sphere
    with pytest.raises(ConfigError, match="eta"):
        project_(inner, start, -0.1)


@pytest.fixture(scope="module")
def setup(digits):
    torch.manual_seed(0)
    model = build_model("tinycnn", 1, 10, (8, 8), *digits.train.channel_stats())
    config = table7_config("digits", epochs=2, batch_size=64, lr=0.05)
    return model, digits.train.subset(range(128), "attack"), digits.test, config


@pytest.mark.parametrize("projection", ["ball", "sphere"])
def test_every_step_stays_within_eta(setup, projection):
    model, attack, _, config = setup
    config = config.model_copy(update={"projection": projection})
    distances = []
    recover(model, attack, 0.01, config, on_step=lambda p, s: distances.append(weight_distance(p, s)))
    assert len(distances) == 4 and max(distances) <= 0.01 + 1e-6  # plain SGD moves ~0.036
    if projection == "sphere":
        assert min(distances) == pytest.approx(0.01, rel=1e-5)


def test_interior_steps_are_not_moved_and_eta_zero_is_a_no_op(setup):
    model, attack, _, config = setup
    # the ball never binds at either radius, so both runs are plain SGD and agree exactly
    # (a projection that rescaled interior points, like the sphere, would make them differ)
    free = recover(model, attack, 1e6, config)
    again = recover(model, attack, 1e9, config)
    assert all(torch.equal(a, b) for a, b in zip(free.parameters(), again.parameters(), strict=True))
    assert weight_distance(list(free.parameters()), list(model.parameters())) > 0.01
    frozen = recover(model, attack, 0.0, config)
    for (name, a), b in zip(model.state_dict().items(), frozen.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # weights and (frozen) BatchNorm statistics unchanged


def test_curve_names_its_policy_and_refuses_overlapping_data(setup):
    model, attack, evaluation, config = setup
    control = evaluation.subset(range(60, 80), "other classes")
    result = recovery_curve(
        {"m": model}, attack, evaluation.subset(range(60), "eval"), [0.0, 0.5], config, control=control
    )
    curve = result.curves[0]
    assert len(curve.control) == 2 and curve.control[0] == accuracy(model, control)
    assert curve.distances[0] == 0.0 and curve.distances[1] <= 0.5 + 1e-6
    assert result.to_dict()["batchnorm"] == "freeze" and "BatchNorm" in result.notes[0]
    with pytest.raises(DataError, match="must be disjoint"):
        recovery_curve({"m": model}, attack, attack.subset(range(10), "eval"), [0.1], config)
    with pytest.raises(ConfigError, match="etas"):
        recovery_curve({"m": model}, attack, evaluation, [], config)


def test_every_curve_records_whether_its_radius_was_reached(setup):
    """Issue 17: a budget too small for the radius (plain SGD moves ~0.036 in these 4 steps)
    is recorded per eta and flagged; a radius the steps exceed is reached (the ball binds)."""
    model, attack, evaluation, config = setup
    result = recovery_curve(
        {"m": model}, attack, evaluation.subset(range(60), "eval"), [0.0, 0.01, 5.0], config
    )
    curve = result.curves[0]
    assert curve.reached == [True, True, False]
    assert curve.projected_steps[1] > 0 and curve.projected_steps[2] == 0
    assert curve.unreached() == [5.0] and curve.distances[2] < 0.5
    report = result.to_dict()
    assert report["curves"][0]["reached"] == [True, True, False]
    assert len(report["warnings"]) == 1 and "radius not reached at eta 5" in report["warnings"][0]
    assert result.table()[0]["reached eta=5"] is False
    assert "radius reached" in result.notes[-1]


def test_radius_reached_definition():
    assert radius_reached(0.0, 0.0)  # the ball is a point
    assert radius_reached(0.396, 0.4) and not radius_reached(0.39, 0.4)  # within 1% of eta
    assert radius_reached(0.2, 0.4, projected_steps=1)  # the projection engaged at some step
    # older reports without a reached list: decided by the distance alone
    assert RecoveryCurve("old", [0.0, 0.4, 0.8], [1.0, 1.0, 1.0], [0.0, 0.4, 0.1406]).reached == [
        True,
        True,
        False,
    ]
