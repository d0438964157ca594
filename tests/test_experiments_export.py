"""Issue 17: 'running' only while a stage runs, stage times in reports, the report's
provenance box, and a CSV export with one unit per metric and the plan's labels."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from typing import Any

import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.experiments import ResultsDB, load_spec, run_graph
from dememo.experiments.backends import LocalBackend
from dememo.experiments.report import render_report, write_markdown
from dememo.experiments.results import export_rows
from dememo.experiments.stages import Stage, StageContext, StageKind, StageOutput, register_stage_kind
from dememo.experiments.stages.base import Inputs, relative_artifact

SEEN: list[list[tuple[str, str]]] = []


@register_stage_kind
class Watch(StageKind):
    """Records which runs the database holds while it runs; stores its metrics."""

    name = "test-watch"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        db = ResultsDB(context.artifacts.parent / "results" / "results.sqlite")
        SEEN.append([(r.label, r.status) for r in db.runs()])
        db.close()
        artifact = context.store.save("test", config, {"value": torch.tensor([1.0])})
        metrics = {tuple(k.split("|")): v for k, v in config["metrics"].items()}
        return StageOutput(relative_artifact(context, artifact.path), metrics)


def _stage(name: str, metrics: dict[str, float], kind: str = "test-watch") -> Stage:
    return Stage(kind, {"id": name, "metrics": metrics}, label=name)


def test_a_stage_is_running_only_while_it_runs(tmp_path):
    SEEN.clear()
    context = StageContext(tmp_path / "artifacts")
    db = ResultsDB.in_directory(tmp_path / "results")
    stages = [_stage(n, {"value|": 1.0}) for n in ("a", "b", "c")]  # all ready at once: all submitted
    run_graph(stages, db, context, LocalBackend())
    # each stage saw itself running and the earlier ones done; the queued ones have no row yet
    assert SEEN == [[("a", "running")], [("a", "done"), ("b", "running")],
                    [("a", "done"), ("b", "done"), ("c", "running")]]  # fmt: skip
    db.close()


def _demo_results(tmp_path) -> ResultsDB:
    context = StageContext(tmp_path / "artifacts")
    db = ResultsDB.in_directory(tmp_path / "results")
    train = _stage("train", {"accuracy|test": 0.5})
    unlearn = Stage("unlearn", {"x": 1}, label="unlearn FT")
    recover = _stage("recover", {"recovered_accuracy|eta=0.4": 0.25, "distance|eta=0.4": 0.14,
                                 "radius_reached|eta=0.4": 0.0})  # fmt: skip
    target = {"protection": "ops", "cls": 0, "part": "Du", "row": "FT_small"}
    labels = {train.key: [{"protection": "ops", "row": "Before", "role": "train"}],
              recover.key: [{**target, "role": "recover"}]}  # fmt: skip
    definition = load_spec("lifecycle").model_dump(mode="json") | {"name": "demo", "views": []}
    db.begin_reproduction("demo", "smoke", definition, "local", labels)
    run_graph([train, recover], db, context, LocalBackend())
    # an unlearn stage stores accuracy in percent (scenario_data.evaluate): recorded by hand
    db.start(unlearn, "cpu")
    db.finish(unlearn.key, StageOutput("x", {("accuracy", "Du"): 40.0}))
    db.db.execute("INSERT INTO plan VALUES ('demo', 'smoke', ?, ?)",
                  (unlearn.key, json.dumps([{**target, "role": "unlearn"}])))  # fmt: skip
    return db


def test_the_csv_has_one_unit_per_metric_and_the_label_columns(tmp_path):
    db = _demo_results(tmp_path)
    rows = export_rows(db)
    db.close()
    accuracy = {(r["kind"], r["split"]): r for r in rows if r["metric"] == "accuracy"}
    assert accuracy[("test-watch", "test")]["value"] == 50.0  # stored as a fraction
    assert accuracy[("unlearn", "Du")]["value"] == 40.0  # stored in percent
    assert {r["unit"] for r in accuracy.values()} == {"percent"}
    recovered = next(r for r in rows if r["metric"] == "recovered_accuracy")
    assert (recovered["value"], recovered["unit"], recovered["eta"]) == (25.0, "percent", "0.4")
    assert (recovered["protection"], recovered["class"], recovered["forget_set"]) == ("ops", "0", "Du")
    assert (recovered["method"], recovered["row"], recovered["study"]) == ("FT", "FT_small", "interplay")
    assert next(r for r in rows if r["metric"] == "distance")["unit"] == "l2"
    out = CliRunner().invoke(app, ["results", str(tmp_path / "results")])  # piped: full-width CSV
    parsed = list(csv.DictReader(io.StringIO(out.output)))
    assert out.exit_code == 0 and {"unit", "eta", "protection", "forget_set"} <= set(parsed[0])


def test_a_certify_audit_that_abstained_gets_explicit_rows(tmp_path):
    context = StageContext(tmp_path / "artifacts")
    db = ResultsDB.in_directory(tmp_path / "results")
    certify = Stage(
        "audit", {"job": "certify", "options": {"etas": [0.0, 0.01]}, "target": None}, label="cert"
    )
    db.begin_reproduction(
        "demo", "smoke", {"study": "interplay"}, "local", {certify.key: [{"role": "certify"}]}
    )
    db.start(certify, "cpu")
    db.finish(certify.key, StageOutput("x", {("clean_value", ""): 0.5, ("certified_upper", "eta=0"): 0.6,
                                             ("certified_lower", "eta=0"): 0.4}))  # fmt: skip
    rows = [r for r in export_rows(db) if r["note"]]
    db.close()
    assert sorted((r["metric"], r["eta"], r["value"]) for r in rows) == [
        ("certified_lower", "0.01", None), ("certified_upper", "0.01", None)]  # fmt: skip
    assert all(r["note"].startswith("abstain") for r in rows)
    del context


def test_a_report_holds_its_commit_and_true_stage_times(tmp_path):
    db = _demo_results(tmp_path)
    # results written before issue 17: every stage 'started' when queued (at 1000), so the
    # queue-inclusive seconds add up to 10 + 20 + 30 = 60 s for 30 s of work
    for number, key in enumerate(r.key for r in db.runs()):
        db.db.execute("UPDATE runs SET started = 1000, finished = ?, seconds = ? WHERE key = ?",
                      (1010 + 10 * number, 10.0 + 10 * number, key))  # fmt: skip
    db.db.execute("UPDATE reproductions SET started = 999, finished = 1031, status = 'done'")
    db.close()
    page = render_report(tmp_path / "results")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert head and f"commit {head}" in page and page.index("Provenance") < page.index("Summary")
    assert "30 s of stage time" in page and "60 s of stage time" not in page
    assert "wall time 32 s" in page and 'href="#section-1"' in page
    assert "no reproduction here has a &#x27;findings&#x27; view" in page
    text = write_markdown(tmp_path / "results", tmp_path / "r.md").read_text()
    assert f"commit {head}" in text and "## Contents" in text
