"""The command line: listing, training, evaluating, and errors as one line."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from dememo.cli import app

runner = CliRunner()


def test_data_list_and_models():
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0 and "fashion-mnist" in result.output
    assert "resnet18" in runner.invoke(app, ["models"]).output
    assert "paper-sgd-cifar10" in runner.invoke(app, ["recipes"]).output


def test_train_then_reuse_then_eval(tmp_path):
    args = ["train", "--dataset", "digits", "--model", "tinycnn", "--epochs", "3",
            "--artifacts", str(tmp_path), "--device", "cpu"]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "saved model" in first.output
    second = runner.invoke(app, args)
    assert "reused stored model" in second.output
    artifact = next((tmp_path / "model").iterdir())
    evaluated = runner.invoke(app, ["eval", str(artifact), "--device", "cpu"])
    assert evaluated.exit_code == 0 and "digits/test (540 images)" in evaluated.output


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from dememo.cli import main; main()", "train", "--dataset", "mnist"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown dataset 'mnist'" in result.stderr and "Traceback" not in result.stderr


def test_protect_list_and_generate_and_reuse(tmp_path):
    listing = runner.invoke(app, ["protect", "--list"])
    assert listing.exit_code == 0 and "ue-s" in listing.output and "cuda" in listing.output
    args = ["protect", "ops", "--dataset", "digits", "-o", "pixels=1", "--artifacts", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "1257 samples covered" in first.output and "saved perturbation" in first.output
    assert "reused stored perturbation" in runner.invoke(app, args).output


def test_protect_eval_prints_a_table_and_writes_markdown(tmp_path):
    out = tmp_path / "table.md"
    result = runner.invoke(app, [
        "protect-eval", "--methods", "ops", "--dataset", "digits", "--model", "tinycnn", "--recipe", "quick",
        "--epochs", "5", "--artifacts", str(tmp_path), "--out", str(out), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "clean" in result.output and "ops" in result.output
    table = out.read_text()
    assert "| clean |" in table and "| ops |" in table


def test_bad_protect_options_exit_2():
    result = subprocess.run(
        [sys.executable, "-c", "from dememo.cli import main; main()",
         "protect", "ue-s", "--dataset", "digits", "--budget", "2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "budget must be in (0, 1]" in result.stderr
