"""Experiment specs, the stage graph and the results database, on stand-in stage kinds."""

from __future__ import annotations

import csv
import sqlite3
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.errors import ConfigError
from dememo.experiments import ExperimentError, ResultsDB, load_spec, plan_spec, run_graph, spec_names
from dememo.experiments.backends import LocalBackend
from dememo.experiments.spec import parse_spec
from dememo.experiments.stages import Stage, StageContext, StageKind, StageOutput, register_stage_kind
from dememo.experiments.stages.base import Inputs, relative_artifact

CALLS: list[str] = []


@register_stage_kind
class AddOne(StageKind):
    """Stores value + 1 (plus the input's value, when it has one) as an artifact."""

    name = "test-add"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        CALLS.append(config["id"])
        value = config["value"] + 1 + sum(out.metrics[("value", "")] for out in inputs.values())
        artifact = context.store.save("test", config, {"value": torch.tensor([value])})
        return StageOutput(relative_artifact(context, artifact.path), {("value", ""): value})


@register_stage_kind
class Fail(StageKind):
    name = "test-fail"

    def run(self, config: dict[str, Any], inputs: Inputs, context: StageContext) -> StageOutput:
        CALLS.append(config["id"])
        raise ConfigError("this stage always fails")


def graph() -> list[Stage]:
    a = Stage("test-add", {"id": "a", "value": 1}, label="a")
    b = Stage("test-add", {"id": "b", "value": 10}, {"x": a.key}, label="b")
    bad = Stage("test-fail", {"id": "bad"}, label="bad")
    after_bad = Stage("test-add", {"id": "after", "value": 0}, {"x": bad.key}, label="after-bad")
    return [b, a, bad, after_bad, a]  # out of order, 'a' twice


def test_graph_runs_shared_stages_once_contains_failures_and_resumes(tmp_path):
    CALLS.clear()
    context = StageContext(tmp_path / "artifacts")
    db = ResultsDB.in_directory(tmp_path / "results")
    outcome = run_graph(graph(), db, context, LocalBackend())
    assert sorted(CALLS) == ["a", "b", "bad"]  # 'a' once; 'after' blocked by its failed input
    stages = {s.label: s for s in graph()}
    assert outcome.outputs[stages["b"].key].metrics[("value", "")] == 2 + 11
    assert db.runs([stages["bad"].key])[0].status == "failed"
    assert "this stage always fails" in db.runs([stages["bad"].key])[0].error
    assert stages["after-bad"].key in outcome.blocked
    with pytest.raises(ExperimentError, match=r"1 stage\(s\) failed: bad \["):
        outcome.raise_for_failures()
    CALLS.clear()
    again = run_graph(graph(), db, context, LocalBackend())
    assert CALLS == ["bad"] and len(again.reused) == 2  # finished stages are skipped, the failure retried
    rows = db.db.execute("SELECT count(*), count(DISTINCT key) FROM runs").fetchone()
    assert rows == (3, 3)


def test_a_cycle_or_a_missing_input_is_a_clear_error(tmp_path):
    orphan = Stage("test-add", {"id": "o", "value": 0}, {"x": "0123456789abcdef"}, label="orphan")
    with pytest.raises(ConfigError, match="input 'x' .* is not a stage of this graph"):
        run_graph([orphan], ResultsDB.in_memory(), StageContext(tmp_path), LocalBackend())


SPEC = """
name: tiny
title: tiny
study: protect-eval
paper: {artefact: Table 3, section: "6.1"}
views: [table3]
scales:
  smoke: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick}]}
  cpu: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick}]}
  paper: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick}]}
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("title: tiny", "title: tiny\ncolour: red", r"tiny\.yaml: colour \(line 4\): Extra inputs"),
        ("smoke: {methods: [ops]", "smoke: {methods: [opz]", r"smoke\.methods \(line 8\): .*'opz'"),
        ("victims: [{dataset: digits", "victims: [{dataset: mnist",
         r"scales\.smoke\.victims\.0\.dataset \(line 8\): .*'mnist'"),
        ("cpu: {methods: [ops], victims: [{dataset: digits, model: mlp",
         "cpu: {methods: [ops], victims: [{dataset: digits, modle: mlp", r"0\.modle \(line 9\): Extra"),
        ("  paper: {methods", "  huge: {methods", r"scales\.huge \(line 10\): Input should be 'smoke'"),
        ("  paper: {methods", "  gpu: {methods", r"missing scale\(s\) \['paper'\].*or large"),
        ("views: [table3]", "views: [table9]", r"views \(line 6\): .*unknown view"),
        ("title: tiny", "title: [tiny", r"tiny\.yaml: not valid YAML"),
    ],
)  # fmt: skip
def test_bad_specs_name_the_file_and_the_key(old, new, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec(SPEC.replace(old, new), "tiny.yaml")


def test_shipped_specs_validate_and_share_stages():
    assert {"table3", "figure4", "figure19"} <= set(spec_names())
    with pytest.raises(ConfigError, match="no scale 'huge'"):
        load_spec("table3").settings("huge")
    with pytest.raises(ConfigError, match="unknown spec 'table99'"):
        load_spec("table99")
    planned = plan_spec(load_spec("figure4"), "smoke")
    protects = {p.stage.key for p in planned if p.stage.kind == "protect"}
    victims = [p for p in planned if p.stage.kind == "train" and p.labels["method"] != "clean"]
    assert len(victims) == 2 * len(protects)  # with and without augmentation, on one protection each
    assert {v.stage.inputs["perturbation"] for v in victims} == protects
    paper = plan_spec(load_spec("table3"), "paper")
    assert len({p.stage.key for p in paper}) < len(paper)  # one protection serves every victim model


def test_results_version_and_foreign_files_are_clear_errors(tmp_path):
    ResultsDB.in_directory(tmp_path / "new").close()
    db = sqlite3.connect(tmp_path / "new" / "results.sqlite")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema version 99, this dememo reads version 1"):
        ResultsDB.in_directory(tmp_path / "new")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "results.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a dememo results database"):
        ResultsDB.in_directory(tmp_path / "junk")
    with pytest.raises(ConfigError, match="no results database here"):
        ResultsDB.in_directory(tmp_path / "empty", create=False)


def test_results_command_filters_and_exports_csv(tmp_path):
    context = StageContext(tmp_path / "artifacts")
    db = ResultsDB.in_directory(tmp_path / "results")
    stages = graph()
    db.begin_reproduction("demo", "smoke", {}, "local", {s.key: [{"id": s.config["id"]}] for s in stages})
    run_graph(stages, db, context, LocalBackend())
    db.close()
    out = tmp_path / "rows.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["results", str(tmp_path / "results"), "--status", "done", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert sorted(float(r["value"]) for r in rows) == [2.0, 13.0]
    assert {r["spec"] for r in rows} == {"demo"} and {r["metric"] for r in rows} == {"value"}
    failed = runner.invoke(app, ["results", str(tmp_path / "results"), "--status", "failed"])
    assert failed.exit_code == 0 and "bad" in failed.output and "done" not in failed.output
