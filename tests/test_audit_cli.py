"""dememo audit: report cards on a stored model, cached by config hash; bad input as one line."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.errors import DememoError

runner = CliRunner()


@pytest.fixture(scope="module")
def stored_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-artifacts")
    args = ["train", "--dataset", "digits", "--model", "tinycnn", "--epochs", "3", "--artifacts", str(root),
            "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    return root, next((root / "model").iterdir())


def test_audit_all_writes_a_cached_report_card(stored_model):
    root, model = stored_model
    args = ["audit", "all", str(model), "--target-class", "3", "--epochs", "2", "--artifacts", str(root),
            "--device", "cpu"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "wrote report" in first.output and "Theorem 1" in first.output
    card = next((root / "audit").iterdir())
    report = json.loads((card / "report.json").read_text())
    assert set(report) >= {"mia", "recovery", "certify", "identity"}
    assert report["recovery"]["batchnorm"] == "freeze" and report["recovery"]["projection"] == "ball"
    assert report["mia"]["target"].endswith("class 3 (train, clean)")
    assert {p.name for p in card.glob("*.png")} == {"mia-roc.png", "recovery.png", "certify.png"}
    assert "reused report" in runner.invoke(app, args).output


def test_certify_abstains_and_names_the_samples_needed(stored_model):
    root, model = stored_model
    args = ["audit", "certify", str(model), "--samples", "8", "--etas", "0,0.05", "--sigma", "0.01",
            "--artifacts", str(root), "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "abstain (N >=" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["certify", "--sigma", "0"], "sigma must be > 0"),
        (["certify", "--q", "1.5"], "q must lie in (0, 1)"),
        (["recover", "--etas", "0,-1"], "etas must be"),
        (["mia", "--target-class", "12"], "target class 12 outside"),
    ],
)
def test_bad_input_is_one_line(stored_model, extra, message):
    root, model = stored_model
    command, *options = extra
    result = runner.invoke(app, ["audit", command, str(model), *options, "--artifacts", str(root)])
    # main() prints a DememoError as one line with exit status 2 (tests/test_cli.py checks that path)
    assert isinstance(result.exception, DememoError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_mia_with_a_lira_reference(stored_model):
    root, model = stored_model
    # the model as its own reference only checks the plumbing: the same model scores ~chance
    args = ["audit", "mia", str(model), "--lira-ref", str(model), "--artifacts", str(root), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(
        next(p for p in (root / "audit").glob("*/report.json") if "lira0" in p.read_text()).read_text()
    )
    attacks = [r["attack"] for r in report["mia"]["rocs"]]
    assert "class-threshold/modified_entropy" in attacks and "lira-offline/1refs" in attacks
    lira = next(r for r in report["mia"]["rocs"] if r["attack"].startswith("lira"))
    assert lira["auc"] == 0.5  # every score is 0 against itself


def test_audits_read_unlearned_artifacts(stored_model, digits):
    from dememo.audit.target import AuditTarget
    from dememo.store import ArtifactStore
    from dememo.unlearn.jobs import unlearn_or_load

    root, model = stored_model
    train = digits.train
    forget, retain = (train.labels == 3).nonzero().flatten(), (train.labels != 3).nonzero().flatten()
    unlearned = unlearn_or_load("ga", ArtifactStore.load_path(model), train, forget, retain,
                                ArtifactStore(root), lr=1e-3, epochs=1)  # fmt: skip
    target = AuditTarget.from_artifact(unlearned.artifact.path)
    assert torch.equal(target.forget, forget) and target.name.startswith("ga/")
    sets = target.sets()
    assert sets.target.name.startswith("forget set") and bool((sets.target.labels == 3).all())
    assert bool((sets.unseen.labels == 3).all()) and bool((sets.class_test.labels == 3).all())
    assert not bool((sets.retain.labels == 3).any())


def test_mia_official_shadow_and_clean_pixels_show_the_unseen_rate(stored_model):
    root, model = stored_model
    args = ["audit", "mia", str(model), "--target-class", "2", "--max-shadow", "official",
            "--shadow", "clean", "--artifacts", str(root), "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "unseen rate" in result.output and "official" in result.output
    reports = [json.loads(p.read_text()) for p in (root / "audit").glob("*/report.json")]
    report = next(r for r in reports if r["identity"].get("options", {}).get("max_shadow", 0) is None)
    assert report["identity"]["options"]["shadow"] == "clean"
    assert set(report["mia"]["unseen_rates"]) == set(report["mia"]["svc_rates"])
    bad = runner.invoke(app, ["audit", "mia", str(model), "--max-shadow", "lots", "--artifacts", str(root)])
    assert isinstance(bad.exception, DememoError) and "--max-shadow" in str(bad.exception)


def test_audit_tables_fit_80_columns_without_cutting_names(stored_model, monkeypatch):
    from dememo.cli import common

    monkeypatch.setattr(common.console, "width", 80)
    root, model = stored_model
    result = runner.invoke(app, ["audit", "mia", str(model), "--target-class", "3", "--max-shadow", "100",
                                 "--artifacts", str(root), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "class-threshold/modified_entropy" in result.output and "…" not in result.output
    defaults = runner.invoke(app, ["audit", "certify", str(model), "--target-class", "3", "--samples", "256",
                                   "--artifacts", str(root), "--device", "cpu"])  # fmt: skip
    assert defaults.exit_code == 0 and "abstain" not in defaults.output, defaults.output
