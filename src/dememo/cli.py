"""The dememo command line: a thin layer over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dememo.atomic import atomic_write_text
from dememo.data import DATASETS, load_dataset
from dememo.data.augment import Augment
from dememo.errors import ConfigError, DememoError
from dememo.models import MODELS
from dememo.paths import artifact_root
from dememo.pipeline import (
    TrainConfig,
    model_from_artifact,
    test_split,
    train_or_load,
    training_split,
)
from dememo.protect import PROTECTORS
from dememo.protect.evaluate import evaluate_protection, results_markdown
from dememo.protect.jobs import protect_or_load
from dememo.protect.presets import preset_options
from dememo.runtime import resolve_device, use_bf16
from dememo.store import ArtifactStore
from dememo.train import RECIPES, accuracy, get_recipe

app = typer.Typer(
    help="dememo: make data unlearnable, unlearn it from models, and audit how deep forgetting goes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="List and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()

DataRoot = Annotated[
    Path | None,
    typer.Option("--data-root", envvar="DEMEMO_DATA", help="Folder (or archive) holding raw data."),
]
Artifacts = Annotated[
    Path | None,
    typer.Option("--artifacts", envvar="DEMEMO_ARTIFACTS", help="Artifact store folder [./artifacts]."),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")]
PrecisionOpt = Annotated[str, typer.Option(help="auto (bf16 where it is fast), fp32 or bf16.")]
Download = Annotated[bool, typer.Option(help="Download with torchvision when missing (needs internet).")]


@data_app.command("list")
def data_list() -> None:
    """List the registered datasets."""
    table = Table("dataset", "source")
    for name in DATASETS:
        table.add_row(name, DATASETS.get(name).description)
    console.print(table)


@data_app.command("info")
def data_info(name: str, data_root: DataRoot = None, download: Download = False) -> None:
    """Decode (or load from cache) a dataset and show its splits, shape and statistics."""
    dataset = load_dataset(name, data_root, download)
    table = Table("split", "images", "shape (C, H, W)", "classes", "mean", "std", title=dataset.name)
    for split in ("train", "test"):
        part = dataset.split(split)
        mean, std = part.channel_stats()
        table.add_row(
            split, str(len(part)), str(tuple(part.images.shape[1:])), str(part.num_classes),
            " ".join(f"{m:.4f}" for m in mean), " ".join(f"{s:.4f}" for s in std),
        )  # fmt: skip
    console.print(table)
    console.print("classes: " + ", ".join(dataset.train.classes))


@app.command("models")
def models_list() -> None:
    """List the registered model architectures."""
    table = Table("model", "description")
    for name in MODELS:
        table.add_row(name, MODELS.get(name).description)
    console.print(table)


@app.command("recipes")
def recipes_list() -> None:
    """List the training recipes (the paper's Table 6 and fast ones)."""
    table = Table("recipe", "epochs", "batch", "optim", "lr", "wd", "schedule", "augment")
    for name in RECIPES:
        r = RECIPES.get(name)
        aug = " ".join(f"{k}={v}" for k, v in r.augment.model_dump().items() if v) or "none"
        table.add_row(name, str(r.epochs), str(r.batch_size), r.optimizer, f"{r.lr:g}",
                      f"{r.weight_decay:g}", r.schedule, aug)  # fmt: skip
    console.print(table)
    for name in RECIPES:
        console.print(f"[bold]{name}[/]: {RECIPES.get(name).source}")


def _train_and_report(config: TrainConfig, data_root: Path | None, artifacts: Path | None,
                      device: str, download: bool = False) -> None:  # fmt: skip
    dataset = load_dataset(config.dataset, data_root, download)
    resolved = resolve_device(device)
    store = ArtifactStore(artifact_root(artifacts))
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
        "precision": "bf16" if use_bf16(resolved, config.precision) else "fp32",
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
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialization, shuffling, augmentation.")] = 0,
    train_per_class: Annotated[
        int | None, typer.Option(help="Use the first N training images per class.")
    ] = None,
    test_per_class: Annotated[
        int | None, typer.Option(help="Evaluate on the first N test images per class.")
    ] = None,
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
    data_root: DataRoot = None,
    device: Device = "auto",
) -> None:
    """Evaluate a stored model on a split of the dataset it was trained on."""
    stored = ArtifactStore.load_path(artifact)
    config = TrainConfig.model_validate(stored.manifest["config"])
    dataset = load_dataset(config.dataset, data_root)
    model = model_from_artifact(stored, training_split(config, dataset))
    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r}; valid: test, train")
    part = test_split(config, dataset) if split == "test" else training_split(config, dataset)
    acc = accuracy(model, part, device=resolve_device(device), precision=config.precision)
    console.print(f"{config.model} on {config.dataset}/{split} ({len(part)} images): {100 * acc:.2f}%")


@app.command("demo")
def demo_command(
    dataset: Annotated[str, typer.Option(help="Dataset for the demo.")] = "fashion-mnist",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 4,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """The main job: train and evaluate the fast network on the default dataset."""
    config = TrainConfig(dataset=dataset, model="fastnet", recipe=get_recipe("fast", epochs=epochs))
    _train_and_report(config, data_root, artifacts, device)


def _parse_options(pairs: list[str], default_method: str | None = None) -> dict[str, dict[str, object]]:
    """'method.key=value' (or 'key=value' for ``default_method``) -> {method: {key: value}}."""
    parsed: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        method, dot, field = key.rpartition(".")
        if not sep or not field or (not dot and default_method is None):
            raise ConfigError(f"--option {pair!r}: expected method.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed.setdefault(method if dot else default_method, {})[field] = value
    return parsed


OptionPairs = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Method option as method.key=value (JSON values), repeatable."),
]


@app.command("protect")
def protect_command(
    method: Annotated[str | None, typer.Argument(help="Protection method (see --list).")] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="List the protection methods.")] = False,
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "cifar10",
    train_per_class: Annotated[int | None, typer.Option(help="Protect the first N images per class.")] = None,
    budget: Annotated[
        float | None, typer.Option(help="l_inf budget in [0, 1] pixel units (8/255 = 0.0314).")
    ] = None,
    fraction: Annotated[float, typer.Option(help="Share of the eligible samples to perturb.")] = 1.0,
    classes: Annotated[str | None, typer.Option(help="Only these classes, e.g. 0,1,2.")] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    option: OptionPairs = None,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Make a protected (unlearnable) release of a training set, or list the methods."""
    if list_methods or method is None:
        table = Table("method", "description")
        for name in PROTECTORS:
            table.add_row(name, PROTECTORS.get(name).description)
        console.print(table)
        return
    options = _parse_options(option or [], default_method=method).get(method, {})
    if budget is not None:
        options["budget"] = budget
    if classes is not None:
        options["classes"] = tuple(int(c) for c in classes.split(","))
    data = load_dataset(dataset, data_root)
    train_set = data.train.head(train_per_class)
    result = protect_or_load(method, data, train_set, ArtifactStore(artifact_root(artifacts)),
                             train_per_class=train_per_class, device=resolve_device(device),
                             fraction=fraction, seed=seed, **options)  # fmt: skip
    metrics = result.artifact.metrics
    console.print(
        f"{method}: {metrics['covered']} samples covered, {metrics['changed_images']} images changed, "
        f"max |change| {metrics['max_abs_change_uint8']}/255, generated in {metrics['seconds']:.1f} s"
    )
    state = "reused stored perturbation" if result.reused else "saved perturbation"
    console.print(f"{state}: {result.artifact.path}")


@app.command("protect-eval")
def protect_eval_command(
    methods: Annotated[str, typer.Option(help="Comma-separated methods, or 'all'.")] = "all",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "cifar10",
    model: Annotated[str, typer.Option(help="Victim architecture.")] = "resnet18",
    recipe: Annotated[str, typer.Option(help="Victim training recipe.")] = "paper-sgd-cifar10",
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    augment: Annotated[bool, typer.Option(help="Train victims with the recipe's augmentation.")] = True,
    ratio: Annotated[float, typer.Option(help="Poisoning ratio: share of training samples protected.")] = 1.0,
    train_per_class: Annotated[int | None, typer.Option(help="First N training images per class.")] = None,
    test_per_class: Annotated[int | None, typer.Option(help="First N test images per class.")] = None,
    preset: Annotated[str, typer.Option(help="Method options: paper (official defaults) or cpu.")] = "paper",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    option: OptionPairs = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table as Markdown here.")] = None,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Train victims on each protected set and report clean test accuracy (Table 3)."""
    names = PROTECTORS.names() if methods == "all" else [m.strip() for m in methods.split(",")]
    for name in names:
        PROTECTORS.get(name)
    options = preset_options(preset)
    for name, extra in _parse_options(option or []).items():
        options.setdefault(name, {}).update(extra)
    overrides: dict[str, object] = {"epochs": epochs} if epochs is not None else {}
    if not augment:
        overrides["augment"] = Augment()
    victim_recipe = get_recipe(recipe, **overrides)
    rows = evaluate_protection(
        load_dataset(dataset, data_root), names, model=model, recipe=victim_recipe,
        store=ArtifactStore(artifact_root(artifacts)), device=resolve_device(device),
        train_per_class=train_per_class, test_per_class=test_per_class, ratio=ratio, seed=seed,
        options=options,
    )  # fmt: skip
    setting = f"{victim_recipe.name}, {victim_recipe.epochs} epochs, augment={'on' if augment else 'off'}"
    title = f"{model} victims ({setting}) on {dataset}, ratio {ratio}, preset {preset}"
    table = Table("method", "test acc", "drop", "paper RN-18", "generation s", "victim s", title=title)
    for r in rows:
        table.add_row(
            r.method, f"{100 * r.test_accuracy:.2f}%", f"{r.drop_points:.1f}",
            f"{r.paper_accuracy:.2f}%" if r.paper_accuracy is not None else "-",
            f"{r.generation_seconds:.0f}" if r.generation_seconds is not None else "-",
            f"{r.train_seconds:.0f}",
        )  # fmt: skip
    console.print(table)
    if out is not None:
        atomic_write_text(out, f"{title}\n\n{results_markdown(rows, 'RN-18')}")
        console.print(f"wrote {out}")


def main() -> None:
    """Entry point: report dememo's own errors as one line and exit with status 2."""
    try:
        app()
    except DememoError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}")
        sys.exit(2)
