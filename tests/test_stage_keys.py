"""A results directory from before a code move is still reused: the stage keys a spec plans
(the hash of each stage's kind, config and inputs, under which results.sqlite and the
artifact store file its work) are frozen here, recorded from the code before issue 16's
layout change. A change that renames a key makes every cached result unreachable."""

from __future__ import annotations

import hashlib

import pytest

from dememo.experiments import ResultsDB, load_spec, plan_spec, run_graph, spec_names
from dememo.experiments.backends import LocalBackend
from dememo.experiments.stages import StageContext, StageOutput

TABLE3_SMOKE = {  # key -> label
    "0fa9edd2825fd378": "protect ue-c on digits",
    "31bb454a57197c7a": "train mlp on ue-s",
    "5d8adfe8fafe68fe": "train mlp on clean data",
    "5e282e111d448c79": "protect ops on digits",
    "a25f9eb6bcb66fab": "protect ue-s on digits",
    "b47ae7565ebadc03": "train mlp on ue-c",
    "d95a714bd8d0c137": "train mlp on ops",
}
LIFECYCLE_SMOKE = {  # key -> label
    "181ff167c9e69dd2": "audit mia of FT_small class 0",
    "1bf786f2cd75842b": "unlearn RT class 0 Du",
    "1c72fce8a6be0072": "audit mia of IF_small class 0",
    "1c9c6902017aabb3": "audit certify of FT_small class 0",
    "26488011e489e145": "unlearn FT_small class 0 Du",
    "305469ce9fdffbc0": "audit accuracy of train mlp on ops (class level)",
    "37e6e7783be0abe1": "audit mia of Before class 0",
    "38326aa234677358": "audit certify of GA_small class 0",
    "3959c2377e57d32d": "train mlp on ops (class level)",
    "f6a7d86b27521c1f": "audit recover of IF_small class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "3bce08d7855471c8": "audit recover of RT class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "b64ed1c2edf9393f": "audit recover of clean class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "6b4ce4ad0c9967ac": "audit certify of Before class 0",
    "701816e086b42c1b": "audit mia of RT class 0",
    "82260d8fee2dba95": "audit recover of Before class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "76f4b7b37926a848": "protect ops on digits",
    "893b4598f339d047": "audit mia of GA_small class 0",
    "8ef2ff325a01f1ed": "train mlp on clean data",
    "78c62203362e32ca": "audit recover of GA_small class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "ae0d7e64d892e3e1": "audit certify of IF_small class 0",
    "b0c100fef0964940": "audit certify of RT class 0",
    "dfdbcd1eb66295cd": "unlearn GA_small class 0 Du",
    "8ee7efdd52fe3b62": "audit recover of FT_small class 0",  # issue 17: recover etas [0, 0.1], 40 epochs
    "ebc23243d4078469": "unlearn IF_small class 0 Du",
}
# sha256 of the sorted unique stage keys, first 16 hex digits, per spec and scale; marked entries
# changed on purpose after the move (a changed setting must name new stages)
PLAN_DIGESTS = {
    "certified/smoke": "af3cda750ea83d70",
    "certified/cpu": "9db297d0de5b31bf",  # issue 17: figure10's Fashion-MNIST setting (shared stages)
    "certified/large": "23356df622a325dd",  # issue 20: scale renamed from paper (same stages)
    "figure10/smoke": "8d292c741ccee12b",
    "figure10/cpu": "a8f8b1dbe4514208",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "figure10/paper": "f6ca8d22eb3ce9d4",
    "figure11/smoke": "429e89f3c3563a41",
    "figure11/cpu": "5d61c161f80459a3",
    "figure11/paper": "3d97e83649a32c31",
    "figure13/smoke": "8d292c741ccee12b",
    "figure13/cpu": "cd40e8e5d5f4199c",
    "figure13/paper": "449ce7bdd39c500b",
    "figure14/smoke": "8d292c741ccee12b",
    "figure14/cpu": "148fdb17d2c06f77",
    "figure14/paper": "d5b035da138cca90",
    "figure15/smoke": "8d292c741ccee12b",
    "figure15/cpu": "7080848348085270",  # issue 17: Fashion-MNIST, OPS, 3 seeds, scaled radii
    "figure15/paper": "da512eec959333d4",
    "figure16-18/smoke": "429e89f3c3563a41",
    "figure16-18/cpu": "899c80b8470d926f",
    "figure16-18/paper": "69e4d8cedce3659b",
    "figure19/smoke": "90de54df6460169e",
    "figure19/cpu": "b4e935ecc7e2845e",
    "figure19/large": "771f4ceba2037312",  # issue 20: scale renamed from paper (same stages)
    "figure2/smoke": "a16a283d2827e23f",
    "figure2/cpu": "46da77c9d12a39fc",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "figure2/paper": "21f4bc014893ec95",
    "figure4/smoke": "5eecbf99257ad8cc",
    "figure4/cpu": "cfffcb1058de463e",
    "figure4/paper": "a39e4dbe5917879e",
    "figure9/smoke": "22cabb2772a8d420",
    "figure9/cpu": "8be68f0009d5556c",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "figure9/paper": "dd42f7706f79006c",
    "interplay-class/smoke": "61e8a49abaa664d7",
    "interplay-class/cpu": "8a3c00d099a89b1f",  # issue 17: Fashion-MNIST, OPS (a victim that learns)
    "interplay-class/paper": "14da5b511534349f",  # issue 15: official MIA shadows
    "interplay-subset/smoke": "677b75d9b4c0ffa6",
    "interplay-subset/cpu": "37e7768664d73f9b",  # issue 17: Fashion-MNIST, OPS
    "interplay-subset/paper": "cda18ac48c9c041c",  # issue 15: official MIA shadows
    "lifecycle/smoke": "c289fde3163240d3",  # issue 17: recover etas [0, 0.1], 40 epochs
    "lifecycle/cpu": "e6f89997adab9200",  # issue 17: OPS, 3 seeds, radii inside the budget
    "lifecycle/large": "baab671ed8164f25",  # issue 15: official MIA shadows; issue 20: renamed from paper
    "llm/smoke": "8aa7f75937f2dde1",  # issue 19: cached layers, scoring, NPO retain term, absolute etas
    "llm/cpu": "4144f87cc46bb5d9",  # issue 19: lr 5e-4 falling linearly (the models learn), etas 0.25/0.75
    "llm/large": "452e5a6dd046a417",  # issue 19: renamed from 'paper' (not the paper's setting), 3 seeds
    "table3/smoke": "6727e1704bbf15c4",
    "table3/cpu": "fc0de0da80684503",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "table3/paper": "bfa60f74638c8891",
    "table5/smoke": "fd4cc7fb7162b93f",
    "table5/cpu": "4d040d0322b40105",  # issue 17: interplay cpu scales on Fashion-MNIST with OPS
    "table5/paper": "d5dc94422f8a95fe",  # issue 15: official MIA shadows
    "certified/gpu": "b03fd411e402378d",  # issue 20: the gpu scale
    "figure10/gpu": "72e7a4d84a2081b4",  # issue 20: the gpu scale
    "figure11/gpu": "5939813aabb9b823",  # issue 20: the gpu scale
    "figure13/gpu": "1b3761363d84dacd",  # issue 20: the gpu scale
    "figure14/gpu": "561a4548d0fa9e17",  # issue 20: the gpu scale
    "figure15/gpu": "c8ee145383a961db",  # issue 20: the gpu scale
    "figure16-18/gpu": "97c143b5d70dd4fe",  # issue 20: the gpu scale
    "figure19/gpu": "df77541d36cd849e",  # issue 20: the gpu scale
    "figure2/gpu": "af4e0905dc0a8080",  # issue 20: the gpu scale
    "figure4/gpu": "3f3f481015880f88",  # issue 20: the gpu scale
    "figure9/gpu": "786d0d76d5ecedc6",  # issue 20: the gpu scale
    "interplay-class/gpu": "2685069c31531420",  # issue 20: the gpu scale
    "interplay-subset/gpu": "4b5fbcd9ac25e2cf",  # issue 20: the gpu scale
    "lifecycle/gpu": "52d0cea28d5f82c1",  # issue 20: the gpu scale
    "llm/gpu": "50e6d3d2a23f1bd7",  # issue 20: the gpu scale (SmolLM2, 6 layers, 3 tasks, 3 seeds)
    "table3/gpu": "e9285310a85111c3",  # issue 20: the gpu scale
    "table5/gpu": "26386e5ab6a37578",  # issue 20: the gpu scale
}


# issue 17: the single-seed plans of the scales that gained seeds (their digests before); their keys
# must stay a subset of the new plans (seed 0's stages unchanged, so cached results are reused)
SINGLE_SEED_DIGESTS = {
    "figure9/cpu": "e30e8c761eb6e974",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "figure10/cpu": "02623af87ab9fa3d",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "figure2/cpu": "5b0006113d767c8d",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "interplay-class/cpu": "89031b9d3d6bae4f",  # issue 17: Fashion-MNIST, OPS
    "interplay-subset/cpu": "a6c2e61ac2900f7a",  # issue 17: Fashion-MNIST, OPS
    "table3/cpu": "dd203d44056851cc",  # issue 17: Fashion-MNIST, fast-noaug, victims that learn
    "table5/cpu": "589fb76f13d950fc",  # issue 17: interplay cpu scales changed
}


def planned_keys(spec: str, scale: str) -> dict[str, str]:
    return {p.stage.key: p.stage.label for p in plan_spec(load_spec(spec), scale)}


@pytest.mark.parametrize(("spec", "frozen"), [("table3", TABLE3_SMOKE), ("lifecycle", LIFECYCLE_SMOKE)])
def test_smoke_plans_keep_their_stage_keys(spec, frozen):
    assert planned_keys(spec, "smoke") == frozen


@pytest.mark.parametrize("where", sorted(PLAN_DIGESTS))
def test_every_plan_keeps_its_stage_keys(where):
    spec, scale = where.split("/")
    assert spec in spec_names()
    keys = " ".join(sorted(planned_keys(spec, scale)))
    assert hashlib.sha256(keys.encode()).hexdigest()[:16] == PLAN_DIGESTS[where]


class NothingRuns(LocalBackend):
    def submit(self, stage, inputs, context):
        raise AssertionError(f"{stage.label} [{stage.key}] should have been reused")


def test_a_results_directory_recorded_before_the_move_is_reused(tmp_path):
    """Runs recorded under the frozen keys alone (no stage object of today's code) are found."""
    db = ResultsDB.in_directory(tmp_path / "results")
    for key, label in TABLE3_SMOKE.items():
        old = type("OldStage", (), {"key": key, "kind": "old", "label": label, "config": {}, "inputs": {}})
        db.start(old, "cpu")
        db.finish(key, StageOutput(f"old/{key}", {("accuracy", "test"): 0.5}))
        (tmp_path / "artifacts" / "old" / key).mkdir(parents=True)
    stages = [p.stage for p in plan_spec(load_spec("table3"), "smoke")]
    outcome = run_graph(stages, db, StageContext(tmp_path / "artifacts"), NothingRuns())
    assert sorted(outcome.reused) == sorted(TABLE3_SMOKE) and not outcome.ran and not outcome.failed


def _single_seed(spec: str, scale: str) -> set[str]:
    loaded = load_spec(spec)
    block = dict(loaded.scales[scale])
    block.pop("seeds", None)
    if spec == "table5":  # the union of the interplay specs: each at its single seed
        return _single_seed("interplay-class", scale) | _single_seed("interplay-subset", scale)
    single = loaded.model_copy(update={"scales": {**loaded.scales, scale: block}})
    return {p.stage.key for p in plan_spec(single, scale)}


@pytest.mark.parametrize("where", sorted(SINGLE_SEED_DIGESTS))
def test_seeded_plans_keep_the_single_seed_keys(where):
    spec, scale = where.split("/")
    old = _single_seed(spec, scale)
    assert hashlib.sha256(" ".join(sorted(old)).encode()).hexdigest()[:16] == SINGLE_SEED_DIGESTS[where]
    new = set(planned_keys(spec, scale))
    assert old < new
    seeds = load_spec(spec if spec != "table5" else "interplay-class").settings(scale).seed_list()
    assert len(seeds) >= 3
