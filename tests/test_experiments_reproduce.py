"""`dememo reproduce` end to end at smoke scale: every shipped spec, the report in a real
browser, a SIGKILL mid-graph then a rerun, and the Ray backend against the local one."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import dememo
from dememo.cli import app
from dememo.experiments import ExperimentError, ResultsDB, load_spec, plan_spec
from dememo.store import MANIFEST, ArtifactStore

SOURCE = str(Path(dememo.__file__).resolve().parents[1])
pytestmark = pytest.mark.slow


# The CLI with a gate: the stage run third writes the gate file and waits there forever, so a
# kill always lands mid-graph with exactly two stages done, however fast the machine is.
GATED_CLI = """
import sys, time, pathlib
import dememo.experiments  # registers every stage kind
from dememo.experiments.stages import STAGE_KINDS
gate, started = pathlib.Path(sys.argv.pop(1)), []
for name in STAGE_KINDS.names():
    kind = STAGE_KINDS.get(name)
    def gated(*args, _run=kind.run, **kwargs):
        started.append(1)
        if len(started) == 3:
            gate.write_text("waiting")
            while True:
                time.sleep(1)
        return _run(*args, **kwargs)
    kind.run = gated
from dememo.cli import main; main()
"""


def dememo_cli(*args: str | Path, gate: Path | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SOURCE, os.environ.get("PYTHONPATH")]))}
    program = ["-c", "from dememo.cli import main; main()"] if gate is None else ["-c", GATED_CLI, str(gate)]
    command = [sys.executable, *program, *map(str, args)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)  # fmt: skip


def run_ok(*args: str | Path) -> str:
    """Run a command in this process (no interpreter start-up); it must succeed."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def reproduce_args(spec: str, results: Path, artifacts: Path, *extra: str) -> list:
    return ["reproduce", spec, "--scale", "smoke", "--results", results, "--artifacts", artifacts,
            "--device", "cpu", *extra]  # fmt: skip


def done_runs(results: Path) -> int:
    try:
        with sqlite3.connect(results / "results.sqlite", timeout=5) as db:
            return db.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def every_artifact(artifacts: Path) -> list[Path]:
    """Artifact folders <kind>/<hash>; hidden entries (the store's .locks/, temporary folders) are not."""
    return [
        p
        for p in artifacts.glob("*/*")
        if not any(part.startswith(".") for part in p.relative_to(artifacts).parts)
    ]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Path:
    """table3 and figure4 at smoke scale into one results directory (figure4 reuses table3's stages)."""
    root = tmp_path_factory.mktemp("reproduce")
    run_ok(*reproduce_args("table3", root / "results", root / "artifacts", "--no-report"))
    output = run_ok(*reproduce_args("figure4", root / "results", root / "artifacts"))
    assert "2 of 8 stages already done" in output  # clean victim and OPS come from table3's run
    return root / "results"


def test_report_holds_table3_beside_the_paper(reproduced):
    html = (reproduced / "report.html").read_text()
    assert "Table 3: unlearnability efficacy" in html and "Figure 4" in html
    assert "<th>paper cifar10_resnet18</th>" in html
    assert "<th>run: mlp on digits, 40/class (quick)</th>" in html
    assert "<td>ops</td><td>32.88</td>" in html  # the paper's value beside this run's
    assert html.count("data:image/png;base64,") == 1 and "http" not in html.replace("arXiv", "")
    db = ResultsDB.in_directory(reproduced, create=False)
    clean = [r for r in db.rows(spec="table3", kind="train", metric="accuracy") if r["split"] == "test"]
    assert len(clean) == 4 and all(0 <= r["value"] <= 1 for r in clean)


def test_report_renders_in_headless_chromium(reproduced, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
             f"--screenshot={shot}"]  # fmt: skip
    subprocess.run([browser, *flags, (reproduced / "report.html").as_uri()], capture_output=True, timeout=120,
                   check=False)  # fmt: skip
    assert shot.is_file(), "chromium wrote no screenshot"
    gray = Image.open(shot).convert("L")
    histogram = gray.histogram()
    dark = sum(histogram[:128]) / (gray.width * gray.height)
    assert 0.005 < dark < 0.5, f"screenshot looks blank or broken ({dark:.4f} of pixels dark)"


def test_sigkill_mid_graph_then_rerun_stores_each_result_once(tmp_path):
    results, artifacts, gate = tmp_path / "results", tmp_path / "artifacts", tmp_path / "gate"
    process = dememo_cli(*reproduce_args("figure19", results, artifacts, "--no-report"), gate=gate)
    deadline = time.monotonic() + 240
    while not gate.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gate.exists() and process.poll() is None, "the third stage never started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = done_runs(results)
    assert killed_after == 2
    process = dememo_cli(*reproduce_args("figure19", results, artifacts))
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert f"{killed_after} of 5 stages already done" in output
    planned = {p.stage.key for p in plan_spec(load_spec("figure19"), "smoke")}
    with sqlite3.connect(results / "results.sqlite") as db:
        runs = db.execute("SELECT key, status FROM runs").fetchall()
        query = "SELECT run, name, split, count(*) FROM metrics GROUP BY run, name, split"
        metrics = db.execute(query).fetchall()
        kinds = dict(db.execute("SELECT key, kind FROM runs").fetchall())
    assert sorted(key for key, _ in runs) == sorted(planned) and {s for _, s in runs} == {"done"}
    assert all(count == 1 for *_, count in metrics)
    per_run = {key: sum(1 for m in metrics if m[0] == key) for key in planned}
    expected = {"protect": 4, "train": 4}  # train: accuracy on test and train, seconds, n (test size)
    assert all(per_run[k] == expected[kinds[k]] for k in planned)
    stored = every_artifact(artifacts)
    assert len(stored) == 5  # 3 models + 2 perturbations, none twice
    for path in stored:
        ArtifactStore.load_path(path)  # raises on a missing file or a content hash mismatch
        assert (path / MANIFEST).is_file()


RAY_SPEC = """
name: tiny-ray
title: "Ray backend check"
study: protect-eval
paper: {artefact: Table 3, section: "6.1"}
views: [table3]
scales:
  smoke: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick, epochs: 2,
          train_per_class: 20, test_per_class: 10, precision: fp32, paper_column: cifar10_resnet18}]}
  cpu: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick}]}
  paper: {methods: [ops], victims: [{dataset: digits, model: mlp, recipe: quick}]}
"""


def test_ray_backend_gets_the_local_results(tmp_path):
    pytest.importorskip("ray")
    spec = tmp_path / "tiny-ray.yaml"
    spec.write_text(RAY_SPEC)
    values = {}
    for backend in ("local", "ray"):
        results, artifacts = tmp_path / backend, tmp_path / f"{backend}-artifacts"
        args = reproduce_args(
            str(spec), results, artifacts, "--backend", backend, "--num-cpus", "2", "--no-report"
        )
        if backend == "ray":  # its own process: Ray's start and shutdown leave this one untouched
            process = dememo_cli(*args)
            output, _ = process.communicate(timeout=300)
        else:
            output = run_ok(*args)
        assert "3 stages run" in output, output
        db = ResultsDB.in_directory(results, create=False)
        values[backend] = sorted((r["stage"], r["metric"], r["split"], r["value"])
                                 for r in db.rows(metric="accuracy"))  # fmt: skip
        runs = db.runs()
        assert {r.status for r in runs} == {"done"} and len(runs) == 3
    assert values["ray"] == values["local"]


def test_a_failing_stage_is_recorded_the_rest_runs_and_the_command_exits_2(tmp_path):
    spec = tmp_path / "broken.yaml"  # class 42 does not exist: OPS fails when it runs, not when planned
    broken = "smoke: {methods: [ops], options: {ops: {classes: [42]}},"
    spec.write_text(RAY_SPEC.replace("smoke: {methods: [ops],", broken))
    args = reproduce_args(str(spec), tmp_path / "results", tmp_path / "artifacts")
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, ExperimentError), result.output  # main() prints it, exit 2
    message = str(result.exception)
    assert "1 stage(s) failed: protect ops on digits" in message and "classes [42] are outside" in message
    db = ResultsDB.in_directory(tmp_path / "results", create=False)
    assert sorted((r.label, r.status) for r in db.runs()) == [
        ("protect ops on digits", "failed"), ("train mlp on clean data", "done")]  # fmt: skip
    assert "Failed stages" in (tmp_path / "results" / "report.html").read_text()
