"""Fine-tuned, unlearned and attacked LMs as artifacts: reuse, round trips, bad input."""

import csv

import pytest
import torch
from pydantic import ValidationError

from dememo.errors import ArtifactError, ConfigError
from dememo.lm.data import LMData, study_examples
from dememo.lm.jobs import (
    UNLEARNED_LM_KIND,
    LMSetup,
    RecoveryConfig,
    finetune_or_load,
    load_stored_lm,
    recover_or_load,
    unlearn_lm_or_load,
)
from dememo.lm.model import trainable_state
from dememo.lm.train import LMRecipe
from dememo.store import ArtifactStore

CPU = torch.device("cpu")
WORDS = {"sport": "match goal team league coach", "money": "bank rate budget market tax",
         "music": "album band song chart tour"}  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "topics.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for label, words in WORDS.items():
            for i in range(10):
                writer.writerow([f"{words} item {i} of the {label} news today with more words", label])
        repeated = "match  goal team league coach item 0 of the sport news today with more words"
        writer.writerow([repeated, "sport"])
    data = LMData(corpus=str(path), tasks=("sport", "money"), train_per_task=4, test_per_task=2,
                  max_words=None)  # fmt: skip
    return LMSetup(model="tiny:16x2", train_layers=1, data=data)


def state(lm):
    return {k: v.clone() for k, v in trainable_state(lm.model).items()}


def test_examples_are_deterministic_and_protected(setup):
    examples = study_examples(setup.data)
    assert [len(examples.clean[t]) for t in setup.data.tasks] == [4, 4]
    for task in setup.data.tasks:  # int(0.05 * 16 words) -> one word inserted
        pairs = zip(examples.clean[task], examples.protected[task], strict=True)
        assert all(len(p.text.split()) == len(c.text.split()) + 1 for c, p in pairs)
        assert examples.inserted[task] == [1] * 4
    summary = examples.summary()
    assert summary["duplicates_removed"] == 1  # the repeated sport article (extra space), before the split
    assert summary["inserted_words"] == {"mean": 1.0, "min": 1, "max": 1}
    assert study_examples(setup.data.model_copy()) is examples  # cached per process


def test_unlearned_lm_round_trips_and_is_reused(setup, tmp_path):
    store = ArtifactStore(tmp_path)
    recipe = LMRecipe(epochs=2, lr=1e-2, batch_size=4)
    parent = finetune_or_load(setup, recipe, "protected", store, CPU)
    assert not parent.reused and set(parent.artifact.metrics["test_accuracy"]) == {"sport", "money"}
    assert parent.artifact.metrics["test_size"] == {"sport": 2, "money": 2}
    assert set(parent.artifact.metrics["test_yes_share"]) == {"sport", "money"}
    stored = set(parent.artifact.tensors)
    assert stored and all(k.startswith("model.layers.1.") or k == "model.norm.weight" for k in stored)
    first = unlearn_lm_or_load(parent.artifact, "ga", "sport", store, CPU, epochs=1, lr=1e-2)
    again = unlearn_lm_or_load(parent.artifact, "ga", "sport", store, CPU, epochs=1, lr=1e-2)
    assert not first.reused and again.reused and again.artifact.path == first.artifact.path
    config = first.artifact.manifest["config"]
    assert config["parent"] == parent.artifact.manifest["config_hash"] and config["task"] == "sport"
    assert config["options"]["lr"] == 1e-2 and config["options"]["epochs"] == 1  # validated options
    assert {"forget_accuracy", "forget_yes_share", "retain_accuracy", "retain_yes_share"} <= set(
        first.artifact.metrics
    )
    loaded = load_stored_lm(ArtifactStore.load_path(first.artifact.path, UNLEARNED_LM_KIND))
    for name, value in state(first.lm).items():
        assert torch.equal(value, state(loaded.lm)[name]), name
    assert not torch.equal(state(first.lm)["model.norm.weight"], state(parent.lm)["model.norm.weight"])
    other = unlearn_lm_or_load(parent.artifact, "npo", "sport", store, CPU, epochs=1, lr=1e-2)
    assert other.artifact.path != first.artifact.path
    curve = recover_or_load(first.artifact, RecoveryConfig(etas=(0.0, 0.05), attack_examples=2), store, CPU)
    points = curve.metrics["points"]
    assert points[0]["distance"] == 0 and points[1]["distance"] > 0 and points[1]["radius"] > 0
    assert {"accuracy", "yes_share", "projected_steps", "reached"} <= set(points[1])
    assert curve.tensors["distance"].tolist() == [p["distance"] for p in points]
    assert recover_or_load(first.artifact, RecoveryConfig(etas=(0.0, 0.05), attack_examples=2), store,
                           CPU).path == curve.path  # fmt: skip
    with pytest.raises(ConfigError, match="unknown task 'music'"):
        unlearn_lm_or_load(parent.artifact, "ga", "music", store, CPU)
    with pytest.raises(ConfigError, match="ga: invalid options"):
        unlearn_lm_or_load(parent.artifact, "ga", "sport", store, CPU, lr=-1)
    with pytest.raises(ArtifactError, match="not a fine-tuned LM"):
        unlearn_lm_or_load(first.artifact, "ga", "sport", store, CPU)
    with pytest.raises(ArtifactError, match="needs an unlearned-LM"):
        recover_or_load(parent.artifact, RecoveryConfig(etas=(0.0,)), store, CPU)


def test_lora_with_train_layers_and_unknown_scoring_are_refused(setup, tmp_path):
    with pytest.raises(ValidationError, match="unknown scoring rule 'exact'; valid: choice, generate"):
        LMSetup.model_validate(setup.model_dump() | {"scoring": "exact"})
    with pytest.raises(ConfigError, match="not both"):
        finetune_or_load(setup, LMRecipe(lora_rank=2), "clean", ArtifactStore(tmp_path), CPU)


def test_lora_model_is_stored_whole_and_can_be_unlearned(setup, tmp_path):
    store, full = ArtifactStore(tmp_path), setup.model_copy(update={"train_layers": None})
    parent = finetune_or_load(
        full, LMRecipe(epochs=1, lr=1e-2, batch_size=4, lora_rank=2), "clean", store, CPU
    )
    assert set(parent.artifact.tensors) == set(trainable_state(parent.lm.model))
    assert not any("lora" in k for k in parent.artifact.tensors)
    weights = list(parent.lm.model.parameters())
    assert len(parent.artifact.tensors) == len(weights)  # merged, and every weight trainable again
    unlearned = unlearn_lm_or_load(parent.artifact, "ft", "sport", store, CPU, epochs=1, lr=1e-2)
    assert not torch.equal(state(unlearned.lm)["model.norm.weight"], state(parent.lm)["model.norm.weight"])
