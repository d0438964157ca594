"""Fine-tune-, unlearn- and recover-or-reuse for causal LMs: artifacts named by what made them.

``lm/<hash>``: a fine-tuned LM; config = setup (pretrained model, trained layers, data,
scoring rule), recipe, training data ('clean' or 'protected'), seed. ``unlearned-lm/<hash>``: one task
forgotten; config = the parent's hash and config, the method, its validated options,
the task. ``lm-recovery/<hash>``: a recovery curve of one stored model. The tensors hold
the trained weights only (``set_trainable``); the frozen rest comes from the pretrained
model. transformers is imported only when a model is loaded.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dememo.errors import ArtifactError, ConfigError
from dememo.lm.batches import Item, encode
from dememo.lm.data import LMData, study_examples
from dememo.lm.model import LanguageModel, load_lm, set_trainable, trainable_state
from dememo.lm.prefix import cache_inputs, cached_layer
from dememo.lm.scoring import SCORING, Score, score
from dememo.lm.train import LM_KIND, LMRecipe, finetune
from dememo.lm.unlearn import LMContext, lm_unlearn, lm_unlearn_config
from dememo.store import Artifact, ArtifactStore, canonical_json

UNLEARNED_LM_KIND = "unlearned-lm"
RECOVERY_KIND = "lm-recovery"
TrainingData = Literal["clean", "protected"]


class LMSetup(BaseModel):
    """What every LM stage shares: the pretrained model, which layers train, the examples, and
    how answers are scored (``dememo.lm.scoring``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    train_layers: int | None = Field(None, ge=1, description="train only the last N decoder layers")
    data: LMData
    scoring: str = "choice"

    @field_validator("scoring")
    @classmethod
    def _rule(cls, value: str) -> str:
        if value not in SCORING:
            raise ValueError(f"unknown scoring rule {value!r}; valid: {', '.join(SCORING.names())}")
        return value


@dataclass
class StoredLM:
    """A model with its artifact; ``reused`` when it came from the store."""

    lm: LanguageModel
    setup: LMSetup
    artifact: Artifact
    reused: bool

    @property
    def pad_id(self) -> int:
        return self.lm.tokenizer.pad_token_id


def fresh_model(setup: LMSetup) -> LanguageModel:
    """A copy of the pretrained model (loaded once per process) with ``setup``'s trained layers."""
    pretrained = _pretrained(setup.model, canonical_json(setup.data.model_dump(mode="json")))
    model = set_trainable(copy.deepcopy(pretrained.model).train(), setup.train_layers)
    return LanguageModel(model, pretrained.tokenizer, pretrained.source)


@cache
def _pretrained(source: str, data_json: str) -> LanguageModel:
    texts = study_examples(LMData.model_validate_json(data_json)).vocabulary()  # a tiny model's words
    return load_lm(source, texts=texts, seed=0)


def encoded(setup: LMSetup, part: str, device: torch.device) -> dict[str, list[Item]]:
    """Token ids per task of one part of the examples ('clean', 'protected' or 'test'); when only
    the last layers train, with the input of the first trained layer (``dememo.lm.prefix``).
    Computed once per process: every stage of a setup shares them."""
    return _encoded(canonical_json(setup.model_dump(mode="json")), part, str(device))


@cache
def _encoded(setup_json: str, part: str, device: str) -> dict[str, list[Item]]:
    setup = LMSetup.model_validate_json(setup_json)
    pretrained = _pretrained(setup.model, canonical_json(setup.data.model_dump(mode="json")))
    examples = getattr(study_examples(setup.data), part)
    eos = setup.scoring == "generate"  # trained to stop after the answer, as the official code
    items = {task: encode(examples[task], pretrained.tokenizer, eos) for task in setup.data.tasks}
    layer = cached_layer(pretrained.model, setup.train_layers)
    if layer is None:
        return items
    flat = [item for task in setup.data.tasks for item in items[task]]
    cached = iter(cache_inputs(pretrained.model, flat, layer, pretrained.tokenizer.pad_token_id,
                               torch.device(device)))  # fmt: skip
    return {task: [next(cached) for _ in items[task]] for task in setup.data.tasks}


def evaluate(setup: LMSetup, lm: LanguageModel, items: list[Item], device: torch.device) -> Score:
    return score(setup.scoring, lm.model, items, lm.tokenizer, device)


def score_metrics(prefix: str, result: Score) -> dict[str, float | int]:
    """'<prefix>_accuracy', '<prefix>_yes_share' and '<prefix>_size' of one score."""
    return {
        f"{prefix}_accuracy": result.accuracy,
        f"{prefix}_yes_share": result.yes_share,
        f"{prefix}_size": result.n,
    }


def with_weights(setup: LMSetup, artifact: Artifact) -> LanguageModel:
    """The pretrained model with the artifact's trained weights loaded."""
    lm = fresh_model(setup)
    weights = dict(artifact.tensors)
    unexpected = lm.model.load_state_dict(weights, strict=False).unexpected_keys
    trained = set(trainable_state(lm.model))
    if unexpected or trained - set(weights):
        raise ArtifactError(
            f"{artifact.path}: weights do not fit {setup.model} with train_layers={setup.train_layers} "
            f"(unexpected {sorted(unexpected)[:3]}, missing {sorted(trained - set(weights))[:3]})"
        )
    return lm


def finetune_job_config(setup: LMSetup, recipe: LMRecipe, training_data: TrainingData, seed: int) -> dict:
    return {"setup": setup.model_dump(mode="json"), "recipe": recipe.model_dump(mode="json"),
            "training_data": training_data, "seed": seed}  # fmt: skip


def finetune_or_load(
    setup: LMSetup,
    recipe: LMRecipe,
    training_data: TrainingData,
    store: ArtifactStore,
    device: torch.device,
    seed: int = 0,
) -> StoredLM:
    """Reuse the stored fine-tuned model, or fine-tune on every task's clean or protected
    examples, measure each task's test accuracy and store it."""
    if recipe.lora_rank is not None and setup.train_layers is not None:
        raise ConfigError("LoRA adapts every layer: set train_layers or lora_rank, not both")
    job = finetune_job_config(setup, recipe, training_data, seed)
    stored = store.load(LM_KIND, job)
    if stored is not None:
        return StoredLM(with_weights(setup, stored), setup, stored, reused=True)
    lm = fresh_model(setup)
    items = [i for task_items in encoded(setup, training_data, device).values() for i in task_items]
    started = time.perf_counter()
    model = finetune(lm.model, items, recipe, pad_id=lm.tokenizer.pad_token_id, device=device, seed=seed)
    lm = LanguageModel(set_trainable(model, setup.train_layers), lm.tokenizer, lm.source)
    seconds = time.perf_counter() - started
    scores = {
        task: evaluate(setup, lm, test, device) for task, test in encoded(setup, "test", device).items()
    }
    metrics = {
        "train_seconds": seconds,
        "train_size": len(items),
        "test_accuracy": {task: s.accuracy for task, s in scores.items()},
        "test_yes_share": {task: s.yes_share for task, s in scores.items()},
        "test_size": {task: s.n for task, s in scores.items()},
        "data": study_examples(setup.data).summary(),
    }
    artifact = store.save(LM_KIND, job, trainable_state(lm.model), metrics, seed=seed)
    return StoredLM(lm, setup, artifact, reused=False)


def setup_of(artifact: Artifact) -> LMSetup:
    """The setup of a fine-tuned or unlearned LM artifact."""
    config, kind = artifact.manifest["config"], artifact.manifest.get("kind")
    if kind == UNLEARNED_LM_KIND:
        config = config["parent_config"]
    elif kind != LM_KIND:
        raise ArtifactError(f"{artifact.path}: not an LM artifact (kind {kind!r})")
    return LMSetup.model_validate(config["setup"])


def load_stored_lm(artifact: Artifact) -> StoredLM:
    setup = setup_of(artifact)
    return StoredLM(with_weights(setup, artifact), setup, artifact, reused=True)


def unlearn_job_config(parent: Artifact, method: str, task: str, **options: object) -> dict[str, Any]:
    return {
        "parent": parent.manifest["config_hash"],
        "parent_config": parent.manifest["config"],
        "method": method,
        "options": lm_unlearn_config(method, **options).model_dump(mode="json"),
        "task": task,
    }


def unlearn_lm_or_load(
    parent: Artifact, method: str, task: str, store: ArtifactStore, device: torch.device, **options: object
) -> StoredLM:
    """Reuse the stored model, or forget ``task`` from the fine-tuned ``parent`` with
    ``method`` (the retained data: the other tasks' examples of the parent's training
    data; RT retrains the pretrained model on them with the parent's recipe) and store it.
    Metrics: test accuracy on the forgotten task and on the retained tasks."""
    if parent.manifest.get("kind") != LM_KIND:
        raise ArtifactError(f"{parent.path}: not a fine-tuned LM artifact")
    setup = setup_of(parent)
    if task not in setup.data.tasks:
        raise ConfigError(f"unknown task {task!r} for this model; valid: {', '.join(setup.data.tasks)}")
    job = unlearn_job_config(parent, method, task, **options)
    stored = store.load(UNLEARNED_LM_KIND, job)
    if stored is not None:
        return StoredLM(with_weights(setup, stored), setup, stored, reused=True)
    lm = with_weights(setup, parent)
    train = encoded(setup, parent.manifest["config"]["training_data"], device)
    retain = [i for other, items in train.items() if other != task for i in items]
    recipe = LMRecipe.model_validate(parent.manifest["config"]["recipe"])
    pad = lm.tokenizer.pad_token_id
    context = LMContext(base=lambda: fresh_model(setup).model, recipe=recipe, pad_id=pad, device=device)
    started = time.perf_counter()
    model = lm_unlearn(method, lm.model, train[task], retain, context, **job["options"])
    lm = LanguageModel(set_trainable(model, setup.train_layers), lm.tokenizer, lm.source)
    seconds = time.perf_counter() - started
    test = encoded(setup, "test", device)
    retained = [i for other, items in test.items() if other != task for i in items]
    metrics = {"seconds": seconds, **score_metrics("forget", evaluate(setup, lm, test[task], device))}
    if retained:
        metrics.update(score_metrics("retain", evaluate(setup, lm, retained, device)))
    seed = job["options"]["seed"]
    artifact = store.save(UNLEARNED_LM_KIND, job, trainable_state(lm.model), metrics, seed=seed)
    return StoredLM(lm, setup, artifact, reused=False)


class RecoveryConfig(BaseModel):
    """The recovery attack on one LM: ``recipe`` on ``attack_examples`` clean training examples of
    its task, projected onto the l2 ball (or sphere) of radius eta around the unlearned weights
    (eta relative to ||theta|| when ``relative``). PUE's official attack: SGD in the recipe and
    ``projection: sphere``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    etas: tuple[float, ...] = Field(min_length=1)
    relative: bool = True
    projection: Literal["ball", "sphere"] = "ball"
    attack_examples: int = Field(8, ge=1)
    recipe: LMRecipe = LMRecipe(epochs=2, lr=1e-4, batch_size=8)
    seed: int = 0


def recover_or_load(
    target: Artifact, config: RecoveryConfig, store: ArtifactStore, device: torch.device
) -> Artifact:
    """Reuse or compute the recovery curve of an unlearned LM on the task it forgot; the
    artifact holds one ``RecoveryPoint`` per eta (accuracy, "yes" share, radius, distance
    reached, projected steps, radius reached) as tensors and in its metrics ('points')."""
    from dememo.lm.recovery import lm_recovery_curve  # imports dememo.audit (sklearn): only when used

    if target.manifest.get("kind") != UNLEARNED_LM_KIND:
        raise ArtifactError(f"{target.path}: the recovery attack needs an unlearned-LM artifact")
    job = {"target": target.manifest["config_hash"], "method": target.manifest["config"]["method"],
           "task": target.manifest["config"]["task"], **config.model_dump(mode="json")}  # fmt: skip
    stored = store.load(RECOVERY_KIND, job)
    if stored is not None:
        return stored
    unlearned = load_stored_lm(target)
    lm, setup, task = unlearned.lm, unlearned.setup, job["task"]
    attack = encoded(setup, "clean", device)[task][: config.attack_examples]
    test = encoded(setup, "test", device)[task]
    points = lm_recovery_curve(
        lm.model, attack, list(config.etas),
        lambda model: score(setup.scoring, model, test, lm.tokenizer, device),
        recipe=config.recipe, projection=config.projection, pad_id=unlearned.pad_id, device=device,
        relative=config.relative, seed=config.seed,
    )  # fmt: skip
    rows = [point.to_dict() for point in points]
    tensors = {
        name: torch.tensor([float(row[name]) for row in rows], dtype=torch.float64) for name in rows[0]
    }
    return store.save(RECOVERY_KIND, job, tensors, {"points": rows}, seed=config.seed)
