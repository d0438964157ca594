"""Issue 17: seeds, interval helpers and the findings' verdicts."""

from __future__ import annotations

import math

import pytest

from dememo.experiments import load_spec, plan_spec
from dememo.experiments.stages import StageOutput
from dememo.experiments.stats import seed_estimate, t_interval, wilson
from dememo.experiments.studies.base import Entry
from dememo.experiments.views import findings
from dememo.experiments.views.findings import CONTRADICTED, INCONCLUSIVE, REPRODUCED, judge
from dememo.experiments.views.recovery import mean_curve


def test_wilson_matches_the_hand_computed_interval():
    # 7/10: p=0.7, z=1.959964; centre (p + z^2/2n)/(1 + z^2/n), half z sqrt(p(1-p)/n + z^2/4n^2)/(1 + z^2/n)
    z, n, p = 1.959963984540054, 10, 0.7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = wilson(7, 10)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert (low, high) == pytest.approx((0.3968, 0.8922), abs=1e-4)


def test_t_interval_matches_the_hand_computed_interval():
    mean, std, low, high = t_interval([1, 2, 3])
    assert (mean, std) == (2.0, 1.0)
    half = 4.302652729749464 * 1.0 / math.sqrt(3)  # t(0.975, 2)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert t_interval([5.0])[1:] == (None, None, None)


def test_estimates_describe_their_sample_size():
    assert seed_estimate([70.0], n=10, percent=True).describe() == "70.00 [39.68, 89.22] n=10"
    assert seed_estimate([1.0, 2.0, 3.0]).describe().startswith("2.00 ±1.00 [-0.48, 4.48] 3 seeds")


@pytest.mark.parametrize(
    ("values", "verdict"),
    [([12.0, 13.0, 14.0], REPRODUCED), ([2.0, 3.0, 4.0], CONTRADICTED), ([0.0, 10.0, 20.0], INCONCLUSIVE)],
)
def test_judge_by_the_t_interval(values, verdict):
    outcome, reason, estimate = judge(values, 10.0, above=True)
    assert outcome == verdict and estimate.seeds == 3
    if verdict == INCONCLUSIVE:
        assert "straddles" in reason


def test_judge_one_seed_or_none_is_inconclusive():
    assert judge([50.0], 10.0, True)[0] == INCONCLUSIVE
    assert judge([], 10.0, True)[:2] == (INCONCLUSIVE, "data missing")


def entry(labels, metrics):
    return Entry(labels, f"k{id(labels)}", StageOutput("x", metrics))


def recovery(seed, row, first, last, distance, cls=0, part="Du", control=None):
    """A recovery audit at eta 0 and 0.4; ``control``: the other classes' accuracy at both."""
    labels = {"protection": "ue-s", "level": "class", "cls": cls, "part": part, "row": row, "role": "recover",
              "seed": seed}  # fmt: skip
    metrics = {("recovered_accuracy", "eta=0"): first, ("recovered_accuracy", "eta=0.4"): last,
               ("distance", "eta=0"): 0.0, ("distance", "eta=0.4"): distance}  # fmt: skip
    if control is not None:
        metrics[("control_accuracy", "eta=0")], metrics[("control_accuracy", "eta=0.4")] = control
    return entry(labels, metrics)


def before(seed, accuracy=80.0, duc=10.0):
    labels = {"protection": "ue-s", "level": "class", "cls": 0, "part": "Du", "row": "Before",
              "role": "accuracy", "seed": seed}  # fmt: skip
    return entry(labels, {("accuracy", "Dtr"): accuracy, ("accuracy", "Duc"): duc})


def verdict_of(name, entries):
    return next(v for v in findings.judge_all(entries, with_missing=True) if v.finding == name)


def test_shallow_unlearnability_reproduced_contradicted_inconclusive():
    gains = {REPRODUCED: (0.3, 0.35, 0.32), CONTRADICTED: (0.02, 0.03, 0.01), INCONCLUSIVE: (0.0, 0.3, 0.05)}
    for verdict, values in gains.items():
        entries = [before(s) for s in range(3)] + [recovery(s, "Before", 0.1, 0.1 + g, 0.4)
                                                   for s, g in enumerate(values)]  # fmt: skip
        assert verdict_of("6.3.1", entries).verdict == verdict


def test_shallow_unlearnability_subtracts_what_the_ball_teaches_rt():
    """Before gains 40 points, but RT (never saw the class) gains 38 under the same attack: the
    ball's reach, not a hidden memory, so the finding is contradicted, not reproduced."""
    entries = [before(s) for s in range(3)]
    entries += [recovery(s, "Before", 0.1, 0.5 + d, 0.4) for s, d in enumerate((0.0, 0.01, 0.02))]
    entries += [recovery(s, "RT", 0.0, 0.38, 0.4) for s in range(3)]
    result = verdict_of("6.3.1", entries)
    assert result.verdict == CONTRADICTED and result.estimate.value == pytest.approx(3.0)


def test_radius_not_reached_is_inconclusive():
    entries = [before(s) for s in range(3)] + [recovery(s, "Before", 0.1, 0.5, 0.2) for s in range(3)]
    result = verdict_of("6.3.1", entries)
    assert result.verdict == INCONCLUSIVE and result.reason.startswith("radius not reached")


def test_a_weak_victim_is_inconclusive():
    entries = [before(s, 15.0) for s in range(3)] + [recovery(s, "Before", 0.1, 0.5, 0.4) for s in range(3)]
    result = verdict_of("6.3.1", entries)
    assert result.verdict == INCONCLUSIVE and result.reason.startswith("victim too weak")


def test_a_protection_that_did_not_hold_is_inconclusive():
    """The Before model learned the protected class from its noisy images (Duc 81%, as the
    Fashion-MNIST demo with augmentation did): the class was never unlearnable."""
    entries = [before(s, duc=81.0) for s in range(3)] + [
        recovery(s, "Before", 0.1, 0.5, 0.4) for s in range(3)
    ]
    result = verdict_of("6.3.1", entries)
    assert result.verdict == INCONCLUSIVE and result.reason.startswith("protection did not hold")


def test_missing_data_is_left_out_of_the_view():
    assert findings.judge_all([]) == []
    assert all(v.reason.startswith("data missing") for v in findings.judge_all([], with_missing=True))


def test_ft_deepest_compares_recovery_gains():
    entries = []
    for seed, offset in enumerate((0.0, 0.02, 0.04)):
        entries += [recovery(seed, "FT_large", 0.0, 0.05 + offset, 0.4),
                    recovery(seed, "IF_large", 0.0, 0.6, 0.4),
                    recovery(seed, "GA_large", 0.0, 0.5 + offset, 0.4)]  # fmt: skip
    assert verdict_of("6.3.2 (FT)", entries).verdict == REPRODUCED


def test_ft_deepest_leaves_out_models_that_unlearning_destroyed():
    """IF that leaves 10% on the other classes (Before: 85%) gains nothing under attack because it
    is broken, not because it forgot deeply; counted, it would flip the verdict."""
    entries = []
    for seed, offset in enumerate((0.0, 0.02, 0.04)):
        entries += [recovery(seed, "Before", 0.1, 0.9, 0.4, control=(0.85, 0.8)),
                    recovery(seed, "FT_large", 0.0, 0.2 + offset, 0.4, control=(0.84, 0.83)),
                    recovery(seed, "IF_large", 0.0, 0.0, 0.4, control=(0.10, 0.10)),
                    recovery(seed, "GA_large", 0.0, 0.3 + offset, 0.4, control=(0.80, 0.82))]  # fmt: skip
    assert verdict_of("6.3.2 (FT)", entries).verdict == REPRODUCED  # GA 0.3 vs FT 0.2, IF left out


def subset_rows(seed, du_if, du_ga, duc_if, duc_ga):
    base = {"protection": "ue-s", "level": "subset", "cls": 0, "part": "Du", "seed": seed}
    rows = {"RT": (10.0, 60.0, 80.0), "IF_small": (du_if, duc_if, 79.0), "GA_small": (du_ga, duc_ga, 78.0)}
    return [entry({**base, "row": row, "role": "unlearn"}, {("accuracy", "Du"): du, ("accuracy", "Duc"): duc,
                                                             ("accuracy", "Dt"): dt})
            for row, (du, duc, dt) in rows.items()]  # fmt: skip


def test_finding_i_and_ii_on_subset_rows():
    entries = [e for s in range(3) for e in subset_rows(s, 40.0 + s, 50.0, 61.0 + s, 62.0)]
    assert verdict_of("I", entries).verdict == REPRODUCED  # Duc within RT + 5
    assert verdict_of("II", entries).verdict == REPRODUCED  # Du far above RT
    entries = [e for s in range(3) for e in subset_rows(s, 11.0 + s, 12.0, 90.0 + s, 85.0)]
    assert verdict_of("I", entries).verdict == CONTRADICTED
    assert verdict_of("II", entries).verdict == CONTRADICTED


def test_seeds_triple_the_seeded_stages_and_keep_seed_0_keys():
    spec = load_spec("lifecycle")
    single = {p.stage.key for p in plan_spec(spec, "smoke")}
    block = {**spec.scales["smoke"], "seeds": [0, 1, 2]}
    seeded = spec.model_copy(update={"scales": {**spec.scales, "smoke": block}})
    planned = plan_spec(seeded, "smoke")
    keys = {p.stage.key for p in planned}
    assert len(keys) == 3 * len(single)
    assert {p.stage.key for p in planned if p.labels["seed"] == 0} == single
    table3 = load_spec("table3")
    single = {p.stage.key for p in plan_spec(table3, "smoke")}
    block = {**table3.scales["smoke"], "seeds": [0, 1, 2]}
    planned = plan_spec(table3.model_copy(update={"scales": {**table3.scales, "smoke": block}}), "smoke")
    assert len({p.stage.key for p in planned}) == 3 * len(single)
    assert {p.stage.key for p in planned if p.labels["seed"] == 0} == single


def test_results_findings_prints_the_verdicts(tmp_path):
    """dememo results DIR --findings: the verdicts of the recorded entries, as a table."""
    from typer.testing import CliRunner

    from dememo.cli import app
    from dememo.experiments import ResultsDB

    entries = [before(s) for s in range(3)] + [recovery(s, "Before", 0.1, 0.5, 0.4) for s in range(3)]
    db = ResultsDB.in_directory(tmp_path, create=True)
    plan = {f"k{i}": [e.labels] for i, e in enumerate(entries)}
    db.begin_reproduction("figure2", "cpu", load_spec("figure2").model_dump(mode="json"), "local", plan)
    for i, e in enumerate(entries):
        stage = type("S", (), {"key": f"k{i}", "kind": "audit", "label": "x", "config": {}, "inputs": {}})
        db.start(stage, "cpu")
        db.finish(f"k{i}", e.output)
    db.end_reproduction("figure2", "cpu", "done")
    db.close()
    result = CliRunner().invoke(app, ["results", str(tmp_path), "--findings"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "6.3.1" in result.output and "reproduced" in result.output


def test_an_attack_that_collapses_the_model_is_no_recovery():
    from dememo.experiments.views.findings import Missing, usable_gain

    kept = {("recovered_accuracy", "eta=0"): 0.1, ("recovered_accuracy", "eta=0.8"): 0.9,
            ("distance", "eta=0.8"): 0.8, ("control_accuracy", "eta=0"): 0.9,
            ("control_accuracy", "eta=0.8"): 0.8}  # fmt: skip
    assert usable_gain(kept) == pytest.approx(80.0)
    with pytest.raises(Missing, match="attack collapsed the model"):
        usable_gain({**kept, ("control_accuracy", "eta=0.8"): 0.01}, "RT")
    with pytest.raises(Missing, match="radius not reached"):
        usable_gain({**kept, ("distance", "eta=0.8"): 0.3})


def test_a_collapse_on_one_seed_is_flagged_on_the_mean_curve():
    """Seeds whose other classes keep 80% and 80% but fall to 20% on the third: the mean (60% of
    80%) stays above half, yet the collapse of seed 2 must show in tables and figures."""
    entries = [
        recovery(seed, "Before", 0.0, 0.9, 0.4, control=(0.8, low))
        for seed, low in enumerate((0.8, 0.8, 0.2))
    ]
    assert mean_curve(entries).collapsed_at() == [0.4]
    assert mean_curve(entries[:2]).collapsed_at() == []


def lm_entry(seed, column, role, metrics, task="business"):
    return entry({"task": task, "column": column, "role": role, "seed": seed}, metrics)


def test_lm_shallow_leaves_out_lms_that_unlearning_destroyed():
    """GA that answers 'yes' to every retained prompt gains nothing under attack because it is
    broken; counted, its 0 would pull NPO's 18-point gain below the 10-point threshold."""
    entries = []
    for seed, offset in enumerate((0.0, 0.01, 0.02)):
        for column in ("clean", "regtext"):  # fine-tuned models that learned
            entries.append(lm_entry(seed, column, "model", {("accuracy", "business"): 0.75,
                                                            ("yes_share", "business"): 0.5,
                                                            ("test_size", "business"): 128}))  # fmt: skip
        entries += [
            lm_entry(seed, "ga", "model", {("accuracy", "retain"): 0.5, ("yes_share", "retain"): 1.0}),
            lm_entry(
                seed, "ga", "recover", {("task_accuracy", "eta=0"): 0.5, ("task_accuracy", "eta=0.75"): 0.5}
            ),
            lm_entry(seed, "npo", "model", {("accuracy", "retain"): 0.7, ("yes_share", "retain"): 0.5}),
            lm_entry(
                seed,
                "npo",
                "recover",
                {("task_accuracy", "eta=0"): 0.5, ("task_accuracy", "eta=0.75"): 0.68 + offset},
            ),  # fmt: skip
        ]
    assert verdict_of("6.3.3 (shallow)", entries).verdict == REPRODUCED
