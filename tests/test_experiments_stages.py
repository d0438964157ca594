"""The unlearn and audit stage kinds on a tiny class-level scenario (sklearn digits)."""

from __future__ import annotations

import json

import pytest
import torch

from dememo.audit.target import AuditTarget
from dememo.data.scenarios import ScenarioSettings
from dememo.errors import ConfigError
from dememo.experiments import ResultsDB, run_graph
from dememo.experiments.backends import LocalBackend
from dememo.experiments.stages import StageContext
from dememo.experiments.stages.audit import audit_stage
from dememo.experiments.stages.protect import protect_stage
from dememo.experiments.stages.train import train_stage
from dememo.experiments.stages.unlearn import unlearn_stage
from dememo.pipeline import TrainConfig
from dememo.runtime import resolve_precision
from dememo.store import ArtifactStore
from dememo.train import get_recipe
from dememo.unlearn.scenario_data import scenario_data

SCENARIO = ScenarioSettings(level="class")


def lifecycle(digits_name: str = "digits"):
    protect = protect_stage("ops", digits_name, None, classes=SCENARIO.protected_classes)
    config = TrainConfig(dataset=digits_name, model="mlp", recipe=get_recipe("quick", epochs=3))
    before = train_stage(config, protect, SCENARIO)
    ft = unlearn_stage(before, "ft", SCENARIO, 0, "Du", {"epochs": 1})
    rt = unlearn_stage(before, "rt", SCENARIO, 0, "Du")
    target = {"scenario": SCENARIO, "cls": 0, "part": "Du"}
    audits = {
        "before-accuracy": audit_stage("accuracy", before, **target),
        "before-mia": audit_stage("mia", before, {"max_shadow": 200}, **target),
        "ft-mia": audit_stage("mia", ft, {"max_shadow": 200}, **target),
        "before-mia-clean": audit_stage("mia", before, {"max_shadow": 200, "shadow": "clean"}, **target),
        "ft-recover": audit_stage(
            "recover", ft, {"target_class": 0, "etas": (0.0, 0.5), "epochs": 1}, others={"RT": rt}
        ),  # fmt: skip
        "ft-certify": audit_stage("certify", ft, {"target_class": 0, "samples": 16, "etas": (0.0, 0.01)}),
    }
    return [protect, before, ft, rt, *audits.values()], before, ft, rt, audits


def test_unlearn_and_audit_stages_run_reuse_and_measure_the_target(digits, tmp_path):
    stages, before, ft, rt, audits = lifecycle()
    context = StageContext(tmp_path / "artifacts", preloaded=(digits,), device="cpu")
    db = ResultsDB.in_directory(tmp_path / "results")
    outcome = run_graph(stages, db, context, LocalBackend())
    outcome.raise_for_failures()
    out = outcome.outputs
    # the Before model's accuracy audit and an unlearn stage measure the same target's sets
    assert set(k[1] for k in out[audits["before-accuracy"].key].metrics) == {"Du", "Duc", "Dut", "Dtr"}
    assert set(k[1] for k in out[ft.key].metrics if k[0] == "accuracy") == {"Du", "Duc", "Dut", "Dtr"}
    assert out[rt.key].metrics[("accuracy", "Du")] == 0.0  # retrained without class 0
    mia_before, mia_ft = out[audits["before-mia"].key].metrics, out[audits["ft-mia"].key].metrics
    assert 0 <= mia_ft[("svc_rate", "correctness")] <= 1 and ("auc", "class-threshold/loss") in mia_ft
    # every target rate has the unseen rate beside it
    assert 0 <= mia_ft[("svc_unseen_rate", "correctness")] <= 1
    # shadow members: the retain set as the Before model trained on it (OPS pixels), or clean
    folder = {name: context.artifacts / out[audits[name].key].artifact for name in audits}
    reports = {name: json.loads((folder[name] / "report.json").read_text())
               for name in ("before-mia", "before-mia-clean")}  # fmt: skip
    assert reports["before-mia"]["mia"]["shadow"]["pixels"] == "as-trained"
    assert reports["before-mia-clean"]["mia"]["shadow"]["pixels"] == "clean"
    stored = ArtifactStore.load_path(context.artifacts / out[before.key].artifact)
    loaded = AuditTarget.from_artifact(stored, dataset=digits, store=context.store, scenario=SCENARIO)
    released = scenario_data(stored, digits, context.store, SCENARIO).released
    assert loaded.trained_on is not None and torch.equal(loaded.trained_on.images, released.images)
    assert not torch.equal(released.images, digits.train.images)  # OPS changed the protected classes
    # both are audited on the forgotten class's clean counterparts Duc (not on a random half):
    # the paper's corr column is then the accuracy on Duc (FACTS 2.2)
    before_duc = out[audits["before-accuracy"].key].metrics[("accuracy", "Duc")]
    assert mia_before[("svc_rate", "correctness")] == pytest.approx(before_duc / 100)
    ft_duc = out[ft.key].metrics[("accuracy", "Duc")]
    assert mia_ft[("svc_rate", "correctness")] == pytest.approx(ft_duc / 100)
    assert out[audits["before-mia"].key].artifact != out[audits["ft-mia"].key].artifact
    recover = out[audits["ft-recover"].key].metrics
    assert recover[("distance", "eta=0")] == 0.0 and recover[("distance", "eta=0.5")] <= 0.5 + 1e-6
    assert ("recovered_accuracy/RT", "eta=0.5") in recover
    certify = out[audits["ft-certify"].key].metrics
    assert 0 <= certify[("clean_value", "")] <= 1
    # what each stage trained in is resolved (never 'auto') and recorded; evaluation is fp32
    precisions = {r.key: r.precision for r in db.runs()}
    assert precisions[before.key] == resolve_precision("cpu", "auto") and precisions[ft.key] == "fp32"
    assert precisions[audits["before-mia"].key] == "fp32"
    again = run_graph(stages, db, context, LocalBackend())
    assert not again.ran and len(again.reused) == len({s.key for s in stages})
    for stage_output in out.values():
        path = context.artifacts / stage_output.artifact
        if (path / "manifest.json").is_file():
            ArtifactStore.load_path(path)  # passes its hash checks


def test_bad_audit_and_unlearn_stages_are_refused_when_planned():
    stages, before, *_ = lifecycle()
    with pytest.raises(ConfigError, match="unknown audit job 'mai'"):
        audit_stage("mai", before)
    with pytest.raises(ConfigError, match="accuracy needs both"):
        audit_stage("accuracy", before)
    with pytest.raises(ConfigError):
        unlearn_stage(before, "ft", SCENARIO, 0, "Du", {"epochz": 1})


def test_interplay_study_plans_rows_audits_and_shares_models(digits, tmp_path):
    from dememo.experiments.studies.interplay import Interplay, InterplaySettings

    settings = InterplaySettings.model_validate({
        "victim": {"dataset": "digits", "model": "mlp", "recipe": "quick", "epochs": 2},
        "level": "class", "protections": ["ops"], "classes": [0, 4], "methods": ["rt", "ft"],
        "scales": ["small"], "method_options": {"ft": {"epochs": 1}},
        "mia": {"max_shadow": 100}, "recover": {"etas": [0.0, 0.3], "epochs": 1}, "recover_classes": [0],
        "clean_reference": True,
    })  # fmt: skip
    planned = Interplay().plan(settings)
    roles = [p.labels["role"] for p in planned]
    assert roles.count("unlearn") == 4 and roles.count("accuracy") == 2  # (RT, FT_small) x 2 classes
    assert roles.count("mia") == 6  # Before + 2 rows, per class; never on the clean reference
    assert roles.count("recover") == 4  # class 0 only: Before, RT, FT_small, clean
    parts = {p.labels["cls"]: p.labels["part"] for p in planned if p.labels["role"] == "unlearn"}
    assert parts == {0: "Du", 4: "Dc"}  # class 0 protected, class 4 clean
    ft = next(p.stage for p in planned if p.labels.get("row") == "FT_small")
    assert ft.config["options"]["lr"] == 1.5e-2  # the paper's Table 9 value for OPS
    context = StageContext(tmp_path / "artifacts", preloaded=(digits,), device="cpu")
    outcome = run_graph([p.stage for p in planned], ResultsDB.in_memory(), context, LocalBackend())
    outcome.raise_for_failures()
    assert len(outcome.ran) == len({p.stage.key for p in planned})
    with pytest.raises(Exception, match="not in classes"):
        InterplaySettings.model_validate({**settings.model_dump(), "recover_classes": [5]})
