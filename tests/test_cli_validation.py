"""Every bad option is refused before any work starts, as a usage error or one dememo error."""

from __future__ import annotations

import urllib.error

import pytest
from typer.testing import CliRunner

from dememo.cli import app
from dememo.cli.common import parse_options
from dememo.data import load_dataset
from dememo.errors import ConfigError, DataError, DememoError

runner = CliRunner()

BAD = [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--train-per-class", "0"], "--train-per-class"),
    (["train", "--test-per-class", "-2"], "--test-per-class"),
    (["train", "--precision", "fp16"], "--precision"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--device", "mps"], "unsupported device 'mps'"),
    (["train", "--device", "meta"], "unsupported device 'meta'"),
    (["eval", ".", "--split", "val"], "unknown split 'val'"),
    (["protect", "ops", "--dataset", "digits", "--train-per-class", "-3"], "--train-per-class"),
    (["protect", "ops", "--dataset", "digits", "--classes", "cat,dog"], "expected comma-separated class"),
    (["protect", "ops", "--dataset", "digits", "-o", "ops.seed=1"], "seed is set by its own"),
    (["protect", "ops", "--dataset", "digits", "-o", "opz.pixels=3"], "method 'opz' is not one of ops"),
    (["protect", "ops", "--dataset", "digits", "-o", "ops.pixelz=3"], "ops: invalid options"),
    (["protect-eval", "--methods", "ops,ue-s", "-o", "ue-s.stepz=3"], "ue-s: invalid options"),
    (["protect-eval", "--methods", "ops", "-o", "ue-s.steps=3"], "method 'ue-s' is not one of ops"),
    (["protect-eval", "--methods", "ops", "-o", "ops.fraction=0.5"], "fraction is set by its own"),
    (["protect-eval", "--methods", "ops", "--ratio", "2"], "fraction must be in (0, 1]"),
    (["protect-eval", "--epochs", "0"], "--epochs"),
    (["protect-eval", "--methods", "ops", "--model", "resnet19"], "unknown model 'resnet19'"),
    (["train", "--model", "resnet19"], "unknown model 'resnet19'"),
]


def refused(args: list[str]) -> str:
    """The error text of a refused command; fails the test on success or a foreign exception."""
    result = runner.invoke(app, args)
    if isinstance(result.exception, DememoError):
        return str(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    return " ".join(result.output.split()).replace("│", "")


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_refused_before_work(tmp_path, args, message):
    text = refused([*args, "--artifacts", str(tmp_path)] if args[0] != "eval" else args)
    assert message in " ".join(text.split())
    assert not any(p.is_dir() and p.name != ".locks" for p in tmp_path.iterdir())


def test_unwritable_outputs_are_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    text = refused(["train", "--artifacts", str(blocker / "store"), "--device", "cpu"])
    assert "not writable" in text
    out = refused(["protect-eval", "--methods", "ops", "--dataset", "digits", "--artifacts", str(tmp_path),
                   "--out", str(tmp_path)])  # fmt: skip
    assert "is a directory" in out
    out = refused(["protect-eval", "--methods", "ops", "--dataset", "digits", "--artifacts", str(tmp_path),
                   "--out", str(blocker / "table.md")])  # fmt: skip
    assert "not writable" in out
    assert not (tmp_path / "model").exists()


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DataError, match="cifar100: download into .* failed .*check the network"):
        load_dataset("cifar100", tmp_path, download=True)


def test_parse_options_names_unknown_methods():
    assert parse_options(["ops.pixels=3"], methods=["ops"]) == {"ops": {"pixels": 3}}
    with pytest.raises(ConfigError, match="'opz' is not one of ops"):
        parse_options(["opz.pixels=3"], methods=["ops"])
