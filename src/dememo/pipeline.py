"""Train-or-reuse: a model artifact named by the hash of its TrainConfig."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dememo.data.imageset import Dataset, ImageSet
from dememo.errors import ArtifactError, ConfigError, DataError
from dememo.models import build_model
from dememo.runtime import Precision, resolve_precision, seed_everything
from dememo.store import Artifact, ArtifactStore
from dememo.train import Recipe, accuracy, train

MODEL_KIND = "model"


class TrainConfig(BaseModel):
    """What a trained model depends on; its hash names the model artifact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    model: str
    recipe: Recipe
    seed: int = 0
    train_per_class: int | None = Field(None, ge=1, description="first N training images per class")
    test_per_class: int | None = Field(None, ge=1, description="first N test images per class")
    precision: Precision = "auto"
    perturbation: str | None = Field(None, description="config hash of the perturbation trained on")
    data: str | None = Field(
        None, description="Dataset.fingerprint of the decoded data (filled in by train_or_load)"
    )


@dataclass
class TrainedModel:
    model: nn.Module
    artifact: Artifact
    reused: bool


def bind_data(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """``config`` keyed on ``dataset``'s content; refuses data other than the config names."""
    if config.data is None:
        return config.model_copy(update={"data": dataset.fingerprint})
    check_data(config, dataset)
    return config


def check_data(config: TrainConfig, dataset: Dataset, source: object = None) -> None:
    """Raise unless ``dataset`` is the data ``config`` was made from (same decoded content);
    ``source`` (the model artifact) prefixes the message."""
    if config.data is not None and config.data != dataset.fingerprint:
        where = f"{source}: " if source is not None else ""
        raise DataError(
            f"{where}{dataset.name}: this data (fingerprint {dataset.fingerprint}) is not the data the "
            f"model was made from (fingerprint {config.data})"
        )


def check_model_data(config: TrainConfig, dataset: Dataset, source: object) -> None:
    """Raise unless ``dataset`` is what the model of ``config`` was made from: by content
    fingerprint (DataError naming both). A config without one (not made by ``train_or_load``)
    is checked by name only; an imagefolder set is named after its folder, so there the
    registry name 'imagefolder' is not compared."""
    if config.data is not None:
        check_data(config, dataset, source)
    elif config.dataset not in (dataset.name, "imagefolder"):
        raise ConfigError(f"{source}: the model was trained on {config.dataset!r}, not {dataset.name!r}")


def training_split(config: TrainConfig, dataset: Dataset) -> ImageSet:
    return dataset.train.head(config.train_per_class, f"{dataset.name}/train-subset")


def test_split(config: TrainConfig, dataset: Dataset) -> ImageSet:
    return dataset.test.head(config.test_per_class, f"{dataset.name}/test-subset")


def fresh_model(architecture: str, train_set: ImageSet, seed: int) -> nn.Module:
    """``architecture`` as its constructor initializes it under ``seed``, normalizing its
    input with ``train_set``'s channel statistics."""
    seed_everything(seed)
    mean, std = train_set.channel_stats()
    return build_model(
        architecture, train_set.channels, train_set.num_classes, train_set.image_size, mean, std
    )


def new_model(config: TrainConfig, train_set: ImageSet) -> nn.Module:
    """A freshly initialized model (initialization seeded by ``config.seed``)."""
    return fresh_model(config.model, train_set, config.seed)


def model_from_artifact(artifact: Artifact, train_set: ImageSet) -> nn.Module:
    """Rebuild the architecture named in the manifest and load its weights."""
    return model_with_weights(stored_config(artifact), artifact.tensors, train_set, artifact.path)


def model_with_weights(
    config: TrainConfig, weights: dict[str, torch.Tensor], train_set: ImageSet, source: object
) -> nn.Module:
    """``config``'s architecture holding ``weights`` (one-line error naming ``source`` if they misfit)."""
    model = new_model(config, train_set)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ArtifactError(f"{source}: weights do not fit model {config.model!r}") from error
    return model


def stored_config(artifact: Artifact) -> TrainConfig:
    """The TrainConfig of a model artifact (a one-line error for any other artifact)."""
    kind = artifact.manifest.get("kind")
    if kind != MODEL_KIND:
        raise ArtifactError(f"{artifact.path}: a {kind!r} artifact, not a model artifact")
    try:
        return TrainConfig.model_validate(artifact.manifest["config"])
    except ValueError as error:
        raise ArtifactError(f"{artifact.path}: manifest config is not a model config") from error


def train_or_load(
    config: TrainConfig,
    dataset: Dataset,
    store: ArtifactStore,
    device: torch.device | str = "cpu",
    protected: ImageSet | None = None,
) -> TrainedModel:
    """Reuse the stored model for ``config`` or train, evaluate and store it.

    ``protected`` is the perturbed training split named by ``config.perturbation``.
    The key includes ``dataset``'s content fingerprint (``config.data``, filled in here),
    so other data under the same name never reuses this model, and the training precision
    resolved on ``device`` ('auto' becomes bf16 or fp32), so a bf16 model is never served
    as the fp32 one. Accuracies are measured in fp32.
    """
    config = bind_data(config, dataset).model_copy(
        update={"precision": resolve_precision(device, config.precision)}
    )
    if (protected is None) != (config.perturbation is None):
        raise ConfigError("pass the protected training set exactly when config.perturbation is set")
    train_set = protected if protected is not None else training_split(config, dataset)
    stored = store.load(MODEL_KIND, config.model_dump())
    if stored is not None:
        return TrainedModel(model_from_artifact(stored, train_set), stored, reused=True)
    model = new_model(config, train_set)
    result = train(
        model,
        train_set,
        config.recipe,
        seed=config.seed,
        device=device,
        precision=config.precision,
        description=f"{config.model} on {dataset.name}",
    )
    test_set = test_split(config, dataset)
    metrics = {
        "train_accuracy": accuracy(model, train_set, device=device),
        "test_accuracy": accuracy(model, test_set, device=device),
        "train_seconds": result.seconds,
        "steps": result.steps,
        "epoch_losses": result.losses,
        "train_size": len(train_set),
        "test_size": len(test_set),
        "device": str(device),
    }
    model.to("cpu", memory_format=torch.contiguous_format)
    artifact = store.save(MODEL_KIND, config.model_dump(), model.state_dict(), metrics, config.seed)
    return TrainedModel(model, artifact, reused=False)
