"""Training commands: train, eval and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dememo.cli.common import (
    Artifacts,
    DataRoot,
    Device,
    Download,
    Epochs,
    PrecisionOpt,
    Seed,
    TestPerClass,
    TrainPerClass,
    app,
    check_writable,
    console,
)
from dememo.data import load_dataset
from dememo.errors import ConfigError
from dememo.models import MODELS
from dememo.paths import artifact_root
from dememo.pipeline import (
    TrainConfig,
    check_data,
    model_from_artifact,
    stored_config,
    test_split,
    train_or_load,
    training_split,
)
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore
from dememo.train import accuracy, get_recipe


def _train_and_report(config: TrainConfig, data_root: Path | None, artifacts: Path | None,
                      device: str, download: bool = False) -> None:  # fmt: skip
    MODELS.get(config.model)  # unknown names fail here, before any data is decoded
    store = ArtifactStore(artifact_root(artifacts))
    check_writable(store.root)
    resolved = resolve_device(device)
    dataset = load_dataset(config.dataset, data_root, download)
    trained = train_or_load(config, dataset, store, resolved)
    metrics = trained.artifact.metrics
    table = Table("", "value", title="dememo results")
    rows = {
        "dataset": config.dataset,
        "model": config.model,
        "recipe": f"{config.recipe.name} ({config.recipe.epochs} epochs)",
        "train / test images": f"{metrics['train_size']} / {metrics['test_size']}",
        "train accuracy": f"{100 * metrics['train_accuracy']:.2f}%",
        "test accuracy": f"{100 * metrics['test_accuracy']:.2f}%",
        "training time": f"{metrics['train_seconds']:.1f} s on {metrics['device']}",
        "precision": f"trained in {trained.artifact.manifest['config']['precision']}, evaluated in fp32",
    }
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)
    state = "reused stored model" if trained.reused else "saved model"
    console.print(f"{state}: {trained.artifact.path}")


@app.command("train")
def train_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (see 'dememo data list').")] = "digits",
    model: Annotated[str, typer.Option(help="Model name (see 'dememo models').")] = "tinycnn",
    recipe: Annotated[str, typer.Option(help="Recipe name (see 'dememo recipes').")] = "quick",
    epochs: Epochs = None,
    seed: Seed = 0,
    train_per_class: TrainPerClass = None,
    test_per_class: TestPerClass = None,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    download: Download = False,
) -> None:
    """Train a model (or reuse the stored one with the same config) and report accuracy."""
    overrides = {"epochs": epochs} if epochs is not None else {}
    config = TrainConfig(
        dataset=dataset, model=model, recipe=get_recipe(recipe, **overrides), seed=seed,
        train_per_class=train_per_class, test_per_class=test_per_class, precision=precision,
    )  # fmt: skip
    _train_and_report(config, data_root, artifacts, device, download)


@app.command("eval")
def eval_command(
    artifact: Annotated[Path, typer.Argument(help="A model artifact directory (from 'dememo train').")],
    split: Annotated[str, typer.Option(help="train or test.")] = "test",
    allow_other_data: Annotated[
        bool, typer.Option(help="Evaluate even when the data is not what the model was made from.")
    ] = False,
    data_root: DataRoot = None,
    device: Device = "auto",
) -> None:
    """Evaluate a stored model on a split of the data it was trained on (checked by content)."""
    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r}; valid: test, train")
    stored = ArtifactStore.load_path(artifact)
    config = stored_config(stored)
    dataset = load_dataset(config.dataset, data_root)
    if config.data is None:
        console.print("note: this model predates data fingerprints; its data cannot be checked")
    elif not allow_other_data:
        check_data(config, dataset)
    elif config.data != dataset.fingerprint:
        console.print(f"note: evaluating on other data than the model was made from ({dataset.fingerprint})")
    model = model_from_artifact(stored, training_split(config, dataset))
    part = test_split(config, dataset) if split == "test" else training_split(config, dataset)
    acc = accuracy(model, part, device=resolve_device(device))
    console.print(f"{config.model} on {config.dataset}/{split} ({len(part)} images): {100 * acc:.2f}%")
