"""Membership signals against hand values; attacks on overfit vs unrelated models."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from dememo.audit import jobs
from dememo.audit.mia import (
    SVC_SIGNALS,
    best_threshold,
    lira_offline,
    paper_flags,
    paper_table,
    svc_attack,
    threshold_attack,
)
from dememo.audit.roc import roc_result
from dememo.audit.signals import Signals, model_signals
from dememo.audit.target import AuditTarget, check_classes, require_disjoint
from dememo.errors import ConfigError, DataError
from dememo.models import build_model
from dememo.train import get_recipe, train


def hand_signals() -> Signals:
    probs = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])
    return Signals(probs, np.array([0, 1, 1]))


def test_signals_match_hand_computed_values():
    s = hand_signals()
    log = math.log
    assert s.correctness().tolist() == [1.0, 0.0, 0.0]
    assert s.confidence().tolist() == [0.7, 0.2, 0.0]
    entropy = -(0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1))
    assert s.entropy()[:2] == pytest.approx([entropy, entropy])
    assert s.entropy()[2] == pytest.approx(0.0)
    # Song & Mittal: -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)
    m0 = -(0.3 * log(0.7)) - 0.2 * log(0.8) - 0.1 * log(0.9)
    m1 = -(0.8 * log(0.2)) - 0.7 * log(0.3) - 0.1 * log(0.9)
    assert s.modified_entropy()[:2] == pytest.approx([m0, m1], rel=1e-12)
    # a confident wrong prediction (p_y = 0, p_other = 1) is maximally non-member, and finite
    assert s.modified_entropy()[2] == pytest.approx(-log(1e-30) * 2)
    assert s.loss()[:2] == pytest.approx([-log(0.7), -log(0.2)])
    assert s.features("probability").shape == (3, 3)
    with pytest.raises(ConfigError, match="unknown membership signal"):
        s.get("mentr")


def test_roc_and_threshold_basics():
    perfect = roc_result("x", np.array([2.0, 3.0]), np.array([0.0, 1.0]))
    assert perfect.auc == 1.0 and perfect.tpr_at_fpr[0.001] == 1.0 and perfect.advantage == 1.0
    with pytest.raises(ConfigError, match="one class"):
        roc_result("x", np.array([1.0]), np.array([]))
    assert best_threshold(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 3.0
    flags = paper_flags(0.9, before=0.8, retrained=0.7)
    assert flags["up_arrow"] and flags["gap_vs_rt"] == pytest.approx(0.2)
    assert not paper_flags(0.75, before=0.8, retrained=0.7)["up_arrow"]


def test_svc_on_correctness_predicts_member_iff_correct():
    rng = np.random.default_rng(0)
    members = Signals(np.eye(3)[rng.integers(0, 3, 200)] * 0.9 + 0.1 / 3, rng.integers(0, 3, 200))
    members = Signals(members.probs, members.probs.argmax(1))  # all correct
    wrong = Signals(members.probs, (members.probs.argmax(1) + 1) % 3)  # all wrong
    rate = svc_attack(members, wrong, hand_signals(), ["correctness"])["correctness"]
    assert rate == pytest.approx(1 / 3)  # FACTS 2.2: corr column = accuracy of the target


@pytest.fixture(scope="module")
def digit_models(digits):
    """An overfit MLP on 15 images a class, and one trained on 15 other images a class."""
    train_set = digits.train
    first = digits.train.head(15)
    order = [torch.nonzero(train_set.labels == c).flatten()[15:30] for c in range(10)]
    other = train_set.subset(torch.sort(torch.cat(order)).values, "digits/other")
    recipe = get_recipe("quick", epochs=60, batch_size=150, weight_decay=0.0)
    models = []
    for data, seed in ((first, 0), (other, 1)):
        torch.manual_seed(seed)
        model = build_model("mlp", 1, 10, (8, 8), *data.channel_stats())
        train(model, data, recipe, seed=seed, precision="fp32")
        models.append(model)
    return first, digits.test, models


def test_attacks_see_an_overfit_model_and_not_an_unrelated_one(digit_models):
    members, nonmembers, (overfit, unrelated) = digit_models
    signal = {}
    for name, model in (("overfit", overfit), ("unrelated", unrelated)):
        signal[name] = (model_signals(model, members), model_signals(model, nonmembers))
    overfit_roc = threshold_attack(*signal["overfit"], "loss")
    unrelated_roc = threshold_attack(*signal["unrelated"], "loss")
    assert overfit_roc.auc > 0.7, overfit_roc
    assert abs(unrelated_roc.auc - 0.5) < 0.12, unrelated_roc
    # offline LiRA with the unrelated model as the one reference that saw neither set
    lira = lira_offline(*signal["overfit"], [signal["unrelated"][0]], [signal["unrelated"][1]])
    assert lira.auc > 0.7, lira


def test_bad_inputs_are_named(digits, digit_models):
    _, _, (overfit, _) = digit_models
    wrong = build_model("mlp", 1, 3, (8, 8))
    with pytest.raises(ConfigError, match="3 outputs but .* 10 classes"):
        check_classes(wrong, digits.test)
    check_classes(overfit, digits.test)
    with pytest.raises(DataError, match="share 5 images"):
        require_disjoint(digits.test.subset(range(10)), digits.test.subset(range(5, 20)), "attack vs eval")


def test_paper_table_marks_arrows_omissions_and_gaps():
    rates = {
        "RT": {"correctness": 0.1, "probability": 0.2, "entropy": 0.3},
        "Before": {"correctness": 0.5, "probability": 0.5, "entropy": 0.5},
        "GA": {"correctness": 0.6, "probability": 0.4, "entropy": 0.1},
        "broken": {"correctness": 0.9, "probability": 0.9, "entropy": 0.9},
    }
    rows = paper_table(rates, {"RT": 0.5, "Before": 0.5, "GA": 0.5, "broken": 0.11}, chance=0.1)
    ga, broken = rows[2], rows[3]
    assert (
        ga["correctness"] == "0.6000 ↑"
        and ga["probability"] == "0.4000"
        and ga["gap prob vs RT"] == "+0.2000"
    )
    assert broken["probability"] == "-" and broken["gap prob vs RT"] == "-"


def recorded_mia(monkeypatch, target, options):
    """mia_job's result and every set it scored (the SVC's inputs), by set name."""
    scored = {}

    def record(model, data, **kwargs):
        scored[data.name] = data
        return model_signals(model, data, **kwargs)

    monkeypatch.setattr(jobs, "model_signals", record)
    return jobs.mia_job(target, options, torch.device("cpu")), scored


def test_mia_job_honours_max_shadow_and_reports_the_unseen_rate(digits, digit_models, monkeypatch):
    _, _, (overfit, _) = digit_models
    target = AuditTarget(overfit, digits.train, digits.test, "overfit", {"dataset": "digits"})
    sizes = {}
    for cap in (50, 300):
        result, _ = recorded_mia(monkeypatch, target, jobs.MIAOptions(target_class=3, max_shadow=cap))
        sizes[cap] = (result.shadow["members"], result.shadow["nonmembers"])
        assert result.shadow["selection"] == f"random, at most {cap} a side"
    assert sizes == {50: (50, 50), 300: (300, 300)}
    # None: the official selection, the first len(test) retain samples (training order) vs every
    # test sample outside the unseen set (the test images of class 3, held out of the fit)
    result, scored = recorded_mia(monkeypatch, target, jobs.MIAOptions(target_class=3, max_shadow=None))
    retain = torch.nonzero(digits.train.labels != 3).flatten()[: len(digits.test)]
    shadow = scored["retain (train, as-trained (clean: unprotected model))"]
    assert torch.equal(shadow.images, digits.train.images[retain])
    in_class = int((digits.test.labels == 3).sum())
    assert result.shadow["members"] == len(digits.test)
    assert result.shadow["nonmembers"] == len(digits.test) - in_class
    # the unseen rate stands beside every target rate
    report = result.to_dict()
    assert set(report["unseen_rates"]) == set(report["svc_rates"]) == set(SVC_SIGNALS)
    assert all(0 <= v <= 1 for v in report["unseen_rates"].values())
    rows = {row["attack"]: row for row in result.table()}
    assert rows["svc/probability"]["unseen_rate"] == report["unseen_rates"]["probability"]


def test_shadow_members_take_the_pixels_the_model_trained_on(digits, digit_models, monkeypatch):
    _, _, (overfit, _) = digit_models
    released = dataclasses.replace(digits.train, images=255 - digits.train.images)  # stands for protection
    config = {"dataset": "digits", "perturbation": "stand-in"}
    target = AuditTarget(overfit, digits.train, digits.test, "protected", config, trained_on=released)
    retain = torch.nonzero(digits.train.labels != 3).flatten()[: len(digits.test)]
    for shadow, pixels in (("as-trained", released), ("clean", digits.train)):
        options = jobs.MIAOptions(target_class=3, max_shadow=None, shadow=shadow)
        result, scored = recorded_mia(monkeypatch, target, options)
        assert torch.equal(scored[f"retain (train, {shadow})"].images, pixels.images[retain])
        assert result.shadow["pixels"] == shadow
        # the target set and the unseen samples stay clean (the paper's Duc: clean counterparts)
        in_class = digits.train.labels == 3
        assert torch.equal(scored["class 3 (train, clean)"].images, digits.train.images[in_class])
    unloaded = dataclasses.replace(target, trained_on=None)
    with pytest.raises(ConfigError, match="trained on protected data"):
        jobs.mia_job(unloaded, jobs.MIAOptions(target_class=3), torch.device("cpu"))
    with pytest.raises(ValidationError):
        jobs.MIAOptions(shadow="protected")
