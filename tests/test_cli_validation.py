"""Every bad option is refused before any work starts, as a usage error or one dememo error."""

from __future__ import annotations

import urllib.error
from pathlib import Path

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


# --- the hostile-input probe (issue "nothing lost, nothing silently wrong", part B) ---------------
# Each case: a command line ({model}: a stored model, {root}: its store, {probe}: a folder of bad
# inputs, {file}: a regular file, so {file}/sub can never be a folder) and a text its one-line
# DememoError (or usage error) must hold. Nothing may be written where the command stores results.


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe-store")
    args = ["train", "--dataset", "digits", "--model", "tinycnn", "--epochs", "1", "--artifacts", str(root),
            "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    folder = tmp_path_factory.mktemp("probe-inputs")
    files = {"floats.json": b"[1.5, 2.7]", "bools.json": b"[true, false]", "nested.json": b"[[1, 2], [3]]",
             "null.json": b"[null]", "huge.json": b"[1e400]", "bigint.json": b"[99999999999999999999999]",
             "floats.txt": b"1.5 2.7", "latin1.txt": b"1 2 \xff\xfe 3", "deep.json": b"[" * 100000,
             "binary.yaml": bytes(range(256)) * 4, "file": b"x"}  # fmt: skip
    for name, content in files.items():
        (folder / name).write_bytes(content)
    size = len(load_dataset("digits").train)
    (folder / "all.txt").write_text(" ".join(map(str, range(size))))
    return {"model": str(next((root / "model").iterdir())), "root": str(root), "probe": str(folder),
            "file": str(folder / "file")}  # fmt: skip


UNLEARN = ["unlearn", "ft", "{model}", "--artifacts", "{root}", "--device", "cpu"]
AUDIT = ["--artifacts", "{root}", "--device", "cpu"]
HOSTILE = [
    # 5. forget sets and no-op unlearning
    ([*UNLEARN, "--forget", "{probe}/floats.json"], "indices must be integers, got 1.5"),
    ([*UNLEARN, "--forget", "{probe}/bools.json"], "indices must be integers, got true"),
    ([*UNLEARN, "--forget", "{probe}/nested.json"], "indices must be integers, got [1, 2]"),
    ([*UNLEARN, "--forget", "{probe}/null.json"], "indices must be integers, got null"),
    ([*UNLEARN, "--forget", "{probe}/huge.json"], "indices must be integers, got Infinity"),
    ([*UNLEARN, "--forget", "{probe}/bigint.json"], "does not fit a 64-bit integer"),
    ([*UNLEARN, "--forget", "{probe}/floats.txt"], "indices must be integers"),
    ([*UNLEARN, "--forget", "{probe}/latin1.txt"], "not a UTF-8 text file"),
    ([*UNLEARN, "--forget", "{probe}/deep.json"], "not a valid JSON list"),
    ([*UNLEARN, "--forget", "{probe}/all.txt"], "ft: the retain set is empty"),
    ([*UNLEARN, "--forget", "class=0", "-o", "ga.lr=0.5"], "method 'ga' is not one of ft"),
    ([*UNLEARN, "--forget", "class=0", "-o", "seed=-1"], "seed: Input should be greater than or equal to 0"),
    ([*UNLEARN, "--forget", "class=0", "-o", "seed=9223372036854775808"], "seed: Input should be less than"),
    ([*UNLEARN, "--forget", "class=0", "-o", "lr=Infinity"], "lr: Input should be a finite number"),
    ([*UNLEARN, "--forget", "class=0", "-o", "lr=1e400"], "lr: Input should be a finite number"),
    ([*UNLEARN, "--forget", "class=0", "-o", "lr=1e308"], "lr = 1e+308 is beyond the float32 range"),
    (
        [
            "unlearn",
            "certified",
            "{model}",
            "--forget",
            "class=0",
            "-o",
            "epsilon=1e-300",
            "--artifacts",
            "{root}",
        ],
        "give no usable noise schedule",
    ),
    (
        ["unlearn", "if", "{model}", "--forget", "class=0", "-o", "alpha=1e300", "--artifacts", "{root}"],
        "alpha = 1e+300 is beyond the float32 range",
    ),
    (
        ["unlearn", "rt", "{model}", "--forget", "{probe}/all.txt", "--artifacts", "{root}"],
        "retain set is empty",
    ),
    (
        ["unlearn", "if", "{model}", "--forget", "{probe}/all.txt", "--artifacts", "{root}"],
        "retain set is empty",
    ),
    (
        ["unlearn", "certified", "{model}", "--forget", "{probe}/all.txt", "--artifacts", "{root}"],
        "retain set is empty",
    ),
    # 7. tracebacks: audit options, numbers, spec files
    (["audit", "mia", "{model}", "--max-shadow", "1", *AUDIT], "audit mia: invalid options (max_shadow"),
    (
        ["audit", "recover", "{model}", "--projection", "bogus", *AUDIT],
        "audit recover: invalid options (proj",
    ),
    (["audit", "recover", "{model}", "--epochs", "0", *AUDIT], "audit recover: invalid options (epochs"),
    (["audit", "recover", "{model}", "--etas", "nan", *AUDIT], "etas.0: Input should be a finite number"),
    (["audit", "recover", "{model}", "--etas", "0,-1", *AUDIT], "etas must be"),
    (["audit", "recover", "{model}", "--seed", "-1", *AUDIT], "seed: Input should be greater than or equal"),
    (["audit", "certify", "{model}", "--samples", "0", *AUDIT], "audit certify: invalid options (samples"),
    (["audit", "certify", "{model}", "--epsilon", "-1", *AUDIT], "audit certify: invalid options (epsilon"),
    (
        ["audit", "certify", "{model}", "--sigma", "Infinity", *AUDIT],
        "sigma: Input should be a finite number",
    ),
    (["audit", "certify", "{model}", "--etas", "inf", *AUDIT], "etas.0: Input should be a finite number"),
    (["audit", "certify", "{model}", "--seed", "9223372036854775808", *AUDIT], "seed: Input should be less"),
    (["audit", "mia", "{model}", "--seed", "-1", *AUDIT], "seed: Input should be greater than or equal"),
    (["reproduce", "{probe}/binary.yaml", "--results", "{probe}/results"], "binary.yaml"),
]


def fill(args: list[str], where: dict[str, str]) -> list[str]:
    return [a.format(**where) for a in args]


@pytest.mark.parametrize(("args", "message"), HOSTILE, ids=[" ".join(a[:2] + a[3:]) for a, _ in HOSTILE])
def test_hostile_input_is_one_line_before_any_work(probe, tmp_path, args, message):
    store = tmp_path / "art"  # this case's own store: the model is read from the shared one
    text = refused(fill(args, {**probe, "root": str(store)}))
    assert message in " ".join(text.split()), text
    assert "\n" not in text.strip()
    assert not any((store / kind).exists() for kind in ("unlearned", "audit"))
    assert not (Path(probe["probe"]) / "results").exists()


def results_dir(folder: Path, damage: str | None = None) -> Path:
    """A results directory holding a real (empty) results database, optionally damaged."""
    import sqlite3

    from dememo.experiments.results import ResultsDB

    ResultsDB.in_directory(folder).close()
    if damage is not None:
        db = sqlite3.connect(folder / "results.sqlite")
        db.execute(damage)
        db.commit()
        db.close()
    return folder


OUTPUTS = [
    # 8. output and cache locations: {file}/sub can never be a folder, {probe} is a folder
    (["unlearn", "ft", "{model}", "--forget", "class=0", "--artifacts", "{file}/sub"], "not writable"),
    (["audit", "mia", "{model}", "--artifacts", "{file}/sub"], "not writable"),
    (["reproduce", "table3", "--results", "{file}/sub"], "--results {file}/sub: {file}/sub is not writable"),
    (["reproduce", "table3", "--results", "{file}"], "--results {file}: is a file; expected a folder"),
    (["demo", "--results", "{file}/sub"], "--results {file}/sub"),
    (["interplay", "--dataset", "digits", "--results", "{file}/sub"], "--results {file}/sub"),
    (
        ["interplay", "--dataset", "digits", "--results", "{probe}/r", "--out", "{probe}"],
        "--out {probe}: is a dir",
    ),
    (
        ["interplay", "--dataset", "digits", "--results", "{probe}/r", "--out", "{file}/t.md"],
        "--out {file}/t.md",
    ),
    (["llm-study", "--out", "{file}/sub"], "--out {file}/sub"),
    (["results", "{probe}/ok", "--csv", "{probe}"], "--csv {probe}: is a directory"),
    (["results", "{probe}/ok", "--csv", "{file}/rows.csv"], "--csv {file}/rows.csv"),
    (["report", "{probe}/ok", "--out", "{probe}"], "--out {probe}: is a directory"),
    (["report", "{probe}/ok", "--out", "{file}/r.html"], "--out {file}/r.html"),
    (["report", "{probe}/ok", "--markdown", "{file}/r.md"], "--markdown {file}/r.md"),
    (["protect", "ops", "--dataset", "digits", "--export", "{file}/sub"], "{file}"),
    # 9. the results database
    (["report", "{probe}/dropped"], "table(s) runs missing"),
    (["results", "{probe}/dropped"], "table(s) runs missing"),
    (["results", "{probe}/column"], "table metrics lacks column(s) value"),
    (
        ["results", "{probe}/ok", "--status", "Failed"],
        "--status 'Failed': expected one of done, failed, running",
    ),
    (["results", "{probe}/ok", "--status", "finished"], "expected one of done, failed, running"),
    # 10. not validated before the graph runs
    (["llm-study", "--model", "bogus", "--out", "{probe}/llm"], "model 'bogus': not smollm2-135m"),
    (["llm-study", "--model", "tiny:7x0", "--out", "{probe}/llm"], "tiny model 'tiny:7x0'"),
    (
        ["llm-study", "--data", "{probe}/missing.csv", "--out", "{probe}/llm"],
        "--data {probe}/missing.csv: no such",
    ),
    (["llm-study", "--tasks", "cooking", "--out", "{probe}/llm"], "unknown task(s) ['cooking']"),
    (
        ["interplay", "--dataset", "digits", "--classes", "0-99", "--results", "{probe}/r"],
        "classes [10, 11, 12",
    ),
    (
        ["reproduce", "{probe}/classes.yaml", "--results", "{probe}/r"],
        "classes [12] are not classes of digits",
    ),
]


@pytest.fixture(scope="module")
def outputs(probe):
    folder = Path(probe["probe"])
    for name, damage in (("ok", None), ("dropped", "DROP TABLE runs"),
                         ("column", "ALTER TABLE metrics DROP COLUMN value")):  # fmt: skip
        results_dir(folder / name, damage)
    from dememo.experiments.spec import spec_directory

    text = (spec_directory() / "interplay-class.yaml").read_text()
    if "classes:" in text:
        import yaml

        data = yaml.safe_load(text)
        for block in data["scales"].values():
            block["victim"]["dataset"] = "digits"
            block["classes"] = [0, 12]
        (folder / "classes.yaml").write_text(yaml.safe_dump(data))
    return probe


@pytest.mark.parametrize(("args", "message"), OUTPUTS, ids=[" ".join(a) for a, _ in OUTPUTS])
def test_bad_output_or_input_is_one_line_before_any_work(outputs, tmp_path, args, message):
    before = {p.name for p in Path(outputs["probe"]).iterdir()}
    store = tmp_path / "art"
    text = refused([*fill(args, outputs), *(["--artifacts", str(store)] if "--artifacts" not in args and
                                            args[0] not in ("results", "report") else [])])  # fmt: skip
    assert fill([message], outputs)[0] in " ".join(text.split()), text
    assert "\n" not in text.strip()
    assert not any((store / kind).exists() for kind in ("model", "unlearned", "audit", "perturbation"))
    assert {p.name for p in Path(outputs["probe"]).iterdir()} <= before | {"r", "llm"}
    for folder in ("r", "llm"):  # nothing ran: no results database, no report
        assert not list((Path(outputs["probe"]) / folder).glob("results.sqlite"))
