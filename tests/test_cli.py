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
