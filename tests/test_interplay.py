"""Scenarios, the paper's settings, the interplay study on tiny real data, and the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.data.scenarios import ScenarioSettings, build_scenario
from dememo.errors import ArtifactError, ConfigError
from dememo.experiments import ResultsDB
from dememo.experiments.reproduce import stored_entries
from dememo.experiments.spec import CUSTOM
from dememo.unlearn.settings import VICTIM_RECIPE, paper_scale

runner = CliRunner()


def test_class_scenario_sets(digits):
    scenario = build_scenario(ScenarioSettings(level="class"), digits.train, digits.test)
    assert set(digits.train.labels[scenario.protected].tolist()) == {0, 1, 2, 3}
    protected = scenario.target(2)
    assert [e.name for e in protected.evals] == ["Du", "Duc", "Dut", "Dtr"]
    assert (digits.train.labels[protected.forget] == 2).all()
    assert len(protected.forget) + len(protected.retain) == len(digits.train)
    assert not torch.isin(protected.forget, protected.retain).any()
    dtr = protected.evals[3]
    assert dtr.source == "test" and set(digits.test.labels[dtr.indices].tolist()) == {8, 9}
    clean = scenario.target(5)
    assert clean.part == "Dc" and [e.name for e in clean.evals] == ["Dc", "Dct", "Dtr"]
    with pytest.raises(ConfigError, match="class 8 is an observation class"):
        scenario.target(8)
    with pytest.raises(ConfigError, match="class 12 does not exist"):
        scenario.target(12)
    with pytest.raises(ConfigError, match="do not exist"):
        build_scenario(ScenarioSettings(level="class", protected_classes=(0, 11)), digits.train, digits.test)


def test_subset_scenario_is_seeded_and_per_class(digits):
    settings = ScenarioSettings(level="subset", seed=4)
    scenario = build_scenario(settings, digits.train, digits.test)
    for cls in range(10):
        in_class = int((digits.train.labels == cls).sum())
        assert int((digits.train.labels[scenario.protected] == cls).sum()) == round(0.9 * in_class)
    du, dc = scenario.target(3, "Du"), scenario.target(3, "Dc")
    assert not torch.isin(du.forget, dc.forget).any()
    assert [e.name for e in du.evals] == ["Du", "Duc", "Dc", "Dt"]
    assert scenario.key == build_scenario(settings, digits.train, digits.test).key
    other = build_scenario(settings.model_copy(update={"seed": 5}), digits.train, digits.test)
    assert other.key != scenario.key
    noisy = digits.train.images.clone() ^ 1
    released = scenario.release(
        digits.train, type(digits.train)(noisy, digits.train.labels, digits.train.classes)
    )
    changed = (released.images != digits.train.images).flatten(1).any(1)
    assert torch.equal(torch.nonzero(changed).flatten(), scenario.protected)


def test_paper_settings():
    assert paper_scale("ue-s", "class", "ga", "large") == 2.6e-5
    assert paper_scale("tue", "subset", "ft", "large", "Dc") == 2.5e-2
    assert paper_scale("ops", "subset", "if", "small", "Du") == 0.3
    assert (VICTIM_RECIPE.epochs, VICTIM_RECIPE.lr, VICTIM_RECIPE.weight_decay) == (100, 0.01, 5e-4)
    with pytest.raises(ConfigError, match="no class-level scale"):
        paper_scale("tap", "class", "if", "small")


def test_interplay_command_runs_the_study_beside_the_paper_and_reuses_on_rerun(tmp_path):
    args = ["interplay", "--protection", "ops", "--scenario", "subset", "--methods", "rt,ga,ft",
            "--scales", "small", "--classes", "1", "--dataset", "digits", "--model", "mlp", "--recipe",
            "quick", "--epochs", "2", "--scale", "ga.small=0.01", "-o", "ft.epochs=1", "--device", "cpu",
            "--results", str(tmp_path / "results"), "--artifacts", str(tmp_path / "artifacts"),
            "--out", str(tmp_path / "table.md")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = (tmp_path / "table.md").read_text()
    assert "Table 13 (OPS)" in table and "| Du | RT |" in table and "| Dc | GA_small |" in table
    assert "| - | Before |" in table
    # Table 13 (OPS), class 1, Du forgotten, RT row, Dt column: the paper's 76.59 beside this run's value
    rt_row = next(line for line in table.splitlines() if line.startswith("| Du | RT |"))
    assert rt_row.split(" | ")[-1].endswith("(76.59) |")
    # the FT arrow rule (FACTS 1.7) on the recorded results: Duc above the Before model's
    db = ResultsDB.in_directory(tmp_path / "results")
    recorded = stored_entries(db, "interplay-subset-command", CUSTOM)
    entries = {(e.labels["part"], e.labels["row"]): e for e in recorded if "part" in e.labels}
    db.close()
    before_duc, ft_duc = (entries[("Du", r)].metric("accuracy", "Duc") for r in ("Before", "FT_small"))
    ft_row = next(line for line in table.splitlines() if line.startswith("| Du | FT_small |"))
    assert (ft_row.split(" | ")[3].split(" ")[0].endswith("↑")) == (ft_duc > before_duc)
    stamp = {p: p.stat().st_mtime for p in (tmp_path / "artifacts" / "unlearned").iterdir()}
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 stages run" in again.output
    assert (tmp_path / "table.md").read_text() == table
    assert {p: p.stat().st_mtime for p in (tmp_path / "artifacts" / "unlearned").iterdir()} == stamp


def test_unlearn_list_and_bad_inputs(tmp_path):
    listed = runner.invoke(app, ["unlearn", "--list"])
    assert listed.exit_code == 0 and "certified" in listed.output and "alpha" in listed.output
    assert "sisa: an ensemble method; run it from Python" in listed.output
    cases = [
        (["unlearn", "ga", str(tmp_path), "--forget", "class=3"], ArtifactError, "no manifest.json"),
        (["interplay", "--scenario", "row"], ConfigError, "expected class or subset"),
        (["interplay", "--scales", "huge"], ConfigError, "unknown ['huge']"),
        (["interplay", "--classes", "a-b"], ConfigError, "expected e.g. 0-7"),
        (["unlearn", "nope"], ConfigError, "unknown unlearning method 'nope'"),
        (["unlearn", "sisa", str(tmp_path), "--forget", "class=3"], ConfigError, "not run from the CLI"),
    ]
    for args, kind, message in cases:
        result = runner.invoke(app, args)
        assert isinstance(result.exception, kind) and message in str(result.exception), (
            args,
            result.exception,
        )
    shell = subprocess.run(
        [sys.executable, "-c", "from dememo.cli import main; main()", "interplay", "--scenario", "row"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert shell.returncode == 2 and len(shell.stderr.strip().splitlines()) == 1, shell.stderr


def test_unlearn_command_on_a_trained_model(tmp_path):
    train = [
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--artifacts",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    assert runner.invoke(app, train).exit_code == 0
    artifact = next((tmp_path / "model").iterdir())
    args = [
        "unlearn",
        "ga",
        str(artifact),
        "--forget",
        "class=3",
        "-o",
        "lr=0.01",
        "--artifacts",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)  # no --dataset: it comes from the model (digits)
    assert result.exit_code == 0, result.output
    assert "saved unlearned model" in result.output
    assert re.search(r"accuracy \(fp32\): forget [\d.]+%, retain [\d.]+%, test [\d.]+%", result.output)
    assert "at chance" not in result.output
    assert "reused stored unlearned model" in runner.invoke(app, args).output
    wrong = runner.invoke(app, [*args, "--dataset", "cifar10"])
    assert isinstance(wrong.exception, ConfigError) and "trained on 'digits'" in str(wrong.exception)
    # 20 certified steps need sigma ~ 114 (Eq. 15): the model is destroyed, and the user is told
    noisy = runner.invoke(app, ["unlearn", "certified", *args[2:5], "-o", "steps=20", *args[7:]])
    assert noisy.exit_code == 0, noisy.output
    assert "warning: test accuracy" in noisy.output and "at chance" in noisy.output
