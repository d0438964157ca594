"""Unlearn-or-reuse: unlearned models as artifacts named by what made them.

An unlearned model is stored under ``<artifacts>/unlearned/<hash>/``. Its manifest's
config names the parent model (config hash and full TrainConfig), the method, the
method's validated options, the content fingerprint of the training split it unlearned on
(``data``: other data never reuses it), and the forget/retain sets (sha256 of the sorted
indices, sizes); the tensors hold the weights plus the indices themselves (``index.forget``,
``index.retain``), so an audit can rebuild both sets from the artifact alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dememo.data.imageset import Dataset, ImageSet
from dememo.data.scenarios import Scenario, ScenarioSettings, build_scenario
from dememo.errors import ArtifactError, ConfigError
from dememo.pipeline import (
    TrainConfig,
    check_model_data,
    model_from_artifact,
    model_with_weights,
    test_split,
    training_split,
)
from dememo.protect.jobs import PERTURBATION_KIND
from dememo.protect.perturbation import Perturbation
from dememo.runtime import Precision, resolve_precision
from dememo.store import Artifact, ArtifactStore
from dememo.unlearn.base import UNLEARNERS, AugmentingConfig, check_sets, make_config, unlearn

UNLEARNED_KIND = "unlearned"
INDEX_PREFIX = "index."


def index_hash(indices: torch.Tensor) -> str:
    """sha256 (16 hex digits) of the sorted int64 indices."""
    data = torch.sort(torch.as_tensor(indices, dtype=torch.int64)).values.numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class UnlearnedModel:
    model: nn.Module
    artifact: Artifact
    reused: bool

    @property
    def record(self) -> dict[str, Any]:
        return self.artifact.metrics


def unlearn_job_config(
    parent: Artifact,
    method: str,
    forget: torch.Tensor,
    retain: torch.Tensor,
    precision: Precision,
    data: ImageSet,
    **options: object,
) -> dict[str, Any]:
    """The unlearned model's key; ``data``: the training split unlearned on (as released)."""
    config = make_config(method, **options)
    return {
        "parent": parent.manifest["config_hash"],
        "parent_config": parent.manifest["config"],
        "data": data.fingerprint,
        "method": method,
        "options": config.model_dump(mode="json"),
        "precision": precision,
        "forget": index_hash(forget),
        "forget_size": len(forget),
        "retain": index_hash(retain),
        "retain_size": len(retain),
    }


def check_parent(parent: Artifact, data: ImageSet, dataset: Dataset | None = None) -> TrainConfig:
    """The parent's TrainConfig, after checking that ``data`` is the split it was trained on
    (its size) and, given the ``dataset`` ``data`` came from, that this is the data the parent
    was made from (content fingerprint, DataError naming both)."""
    if parent.manifest.get("kind") != "model":
        raise ArtifactError(f"{parent.path}: not a model artifact (kind {parent.manifest.get('kind')!r})")
    config = TrainConfig.model_validate(parent.manifest["config"])
    if dataset is not None:
        check_model_data(config, dataset, parent.path)
    size = parent.metrics.get("train_size")
    if size is not None and size != len(data):
        raise ConfigError(f"{parent.path}: the model was trained on {size} samples, the data has {len(data)}")
    return config


def unlearn_or_load(
    method: str,
    parent: Artifact,
    data: ImageSet,
    forget: object,
    retain: object,
    store: ArtifactStore,
    *,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    dataset: Dataset | None = None,
    **options: object,
) -> UnlearnedModel:
    """Reuse the stored unlearned model for this parent, method, options, sets and data, or
    unlearn and store it atomically. ``data`` is the parent's training split (as
    released, i.e. protected where it was; see ``parent_training_set``), ``dataset`` the
    Dataset it came from (checked against the parent's; ``parent_training_set`` checks it too).
    The key holds ``data``'s fingerprint. RT defaults to the parent's recipe and architecture;
    FT, GA and IF with ``augment`` true (the default) get the parent recipe's augmentation, so
    the stored options (and the artifact key) name the augmentation actually applied."""
    if not UNLEARNERS.get(method).single_model:
        raise ConfigError(
            f"{method}: an ensemble is not a single-model artifact; use dememo.unlearn.{method} directly"
        )
    parent_config = check_parent(parent, data, dataset)
    precision = resolve_precision(device, precision)  # the key holds bf16 or fp32, never 'auto'
    if method == "rt":
        options.setdefault("recipe", parent_config.recipe)
        options.setdefault("architecture", parent_config.model)
    if issubclass(UNLEARNERS.get(method).Config, AugmentingConfig) and options.get("augment", True) is True:
        options["augment"] = parent_config.recipe.augment
    forget_index, retain_index = check_sets(data, forget, retain, method)
    job = unlearn_job_config(parent, method, forget_index, retain_index, precision, data, **options)
    stored = store.load(UNLEARNED_KIND, job)
    if stored is not None:
        return UnlearnedModel(load_unlearned(stored, data)[0], stored, reused=True)
    model = model_from_artifact(parent, data)
    result = unlearn(
        method, model, data, forget_index, retain_index, device=device, precision=precision, **options
    )
    tensors = {
        **result.model.state_dict(),
        f"{INDEX_PREFIX}forget": forget_index,
        f"{INDEX_PREFIX}retain": retain_index,
    }
    artifact = store.save(UNLEARNED_KIND, job, tensors, result.record.to_json(), seed=job["options"]["seed"])
    return UnlearnedModel(result.model, artifact, reused=False)


def load_unlearned(artifact: Artifact, data: ImageSet) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model, forget indices, retain indices) from an unlearned-model artifact."""
    if artifact.manifest.get("kind") != UNLEARNED_KIND:
        raise ArtifactError(f"{artifact.path}: not an unlearned-model artifact")
    config = TrainConfig.model_validate(artifact.manifest["config"]["parent_config"])
    weights = {k: v for k, v in artifact.tensors.items() if not k.startswith(INDEX_PREFIX)}
    model = model_with_weights(config, weights, data, artifact.path)
    return model, artifact.tensors[f"{INDEX_PREFIX}forget"], artifact.tensors[f"{INDEX_PREFIX}retain"]


def parent_scenario(
    parent: Artifact, dataset: Dataset, scenario: ScenarioSettings | None = None
) -> Scenario | None:
    """The scenario an interplay Before model (perturbation 'hash/scenario-key') was trained
    in, after checking that ``dataset`` is the data the model was made from; checked against
    ``scenario`` (default: the level in the key with the paper's options and the parent's
    seed). None for other models."""
    config = TrainConfig.model_validate(parent.manifest["config"])
    check_model_data(config, dataset, parent.path)
    scenario_key = (config.perturbation or "").partition("/")[2]
    if not scenario_key:
        return None
    settings = scenario or ScenarioSettings(level=scenario_key.split("-")[0], seed=config.seed)
    built = build_scenario(settings, training_split(config, dataset), test_split(config, dataset))
    if built.key != scenario_key:
        raise ConfigError(
            f"{parent.path}: trained on scenario {scenario_key}, but these scenario options give {built.key}"
        )
    return built


def parent_training_set(
    parent: Artifact, dataset: Dataset, store: ArtifactStore, scenario: ScenarioSettings | None = None
) -> tuple[ImageSet, Scenario | None]:
    """The training split the parent model saw (released, i.e. protected where it was),
    rebuilt from the dataset and the stored perturbation, and its scenario (``parent_scenario``)."""
    built = parent_scenario(parent, dataset, scenario)
    config = TrainConfig.model_validate(parent.manifest["config"])
    train_set = training_split(config, dataset)
    if config.perturbation is None:
        return train_set, None
    path = store.root / PERTURBATION_KIND / config.perturbation.partition("/")[0]
    protected = Perturbation.from_artifact(ArtifactStore.load_path(path)).apply(train_set)
    return (protected, None) if built is None else (built.release(train_set, protected), built)
