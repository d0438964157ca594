"""Inspection commands: datasets, model architectures, training recipes."""

from __future__ import annotations

from rich.table import Table

from dememo.cli.common import DataRoot, DememoTyper, Download, app, console
from dememo.data import DATASETS, load_dataset
from dememo.models import MODELS
from dememo.train import RECIPES

data_app = DememoTyper(help="List and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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
