"""Protection commands: protect, protect-eval and verify (a release against its manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dememo.atomic import atomic_write_text
from dememo.cli.common import (
    Artifacts,
    DataRoot,
    Device,
    Epochs,
    OptionPairs,
    Seed,
    TestPerClass,
    TrainPerClass,
    app,
    check_writable,
    console,
    parse_options,
)
from dememo.data import load_dataset
from dememo.data.augment import Augment
from dememo.data.release import release_problems
from dememo.errors import ConfigError, DataError
from dememo.experiments.studies.protect_eval import evaluate_protection, results_markdown
from dememo.models import MODELS
from dememo.paths import artifact_root
from dememo.paths import data_root as data_root_of
from dememo.protect import PROTECTORS
from dememo.protect.base import make_config
from dememo.protect.export import check_export_target, export_release, release_manifest
from dememo.protect.jobs import protect_or_load
from dememo.protect.presets import preset_options
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore
from dememo.train import get_recipe


def _checked_options(options: dict[str, dict[str, object]], **named: object) -> None:
    """Validate every method's options now (not hours in), refusing ones set by a named option."""
    for method, values in options.items():
        for key in values.keys() & named.keys():
            raise ConfigError(f"-o {method}.{key}: {key} is set by its own command-line option")
        make_config(method, **values, **named)


def _parse_classes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise ConfigError(f"--classes {text!r}: expected comma-separated class indices, e.g. 0,1,2") from None


@app.command("protect")
def protect_command(
    method: Annotated[str | None, typer.Argument(help="Protection method (see --list).")] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="List the protection methods.")] = False,
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "cifar10",
    train_per_class: Annotated[
        int | None, typer.Option(min=1, help="Protect the first N images per class.")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(help="l_inf budget in [0, 1] pixel units (8/255 = 0.0314).")
    ] = None,
    fraction: Annotated[float, typer.Option(help="Share of the eligible samples to perturb.")] = 1.0,
    classes: Annotated[str | None, typer.Option(help="Only these classes, e.g. 0,1,2.")] = None,
    seed: Seed = 0,
    option: OptionPairs = None,
    export: Annotated[
        Path | None,
        typer.Option(help="Also write the release as PNG folders train/<class>/, test/<class>/ + manifest."),
    ] = None,
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
    options = parse_options(option or [], default_method=method, methods=[method]).get(method, {})
    named = {"budget": budget, "classes": _parse_classes(classes)}
    _checked_options({method: options}, fraction=fraction, seed=seed,
                     **{key: value for key, value in named.items() if value is not None})  # fmt: skip
    options.update({key: value for key, value in named.items() if value is not None})
    if export is not None:
        check_export_target(export, data_root_of(data_root))  # before spending time on generation
    check_writable(artifact_root(artifacts))
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
    if export is not None:
        released = result.perturbation.apply(train_set)
        export_release(export, released, data.test, release_manifest(result, data.name))
        console.print(
            f"exported {len(released)} protected training and {len(data.test)} test images to {export}"
        )


@app.command("protect-eval")
def protect_eval_command(
    methods: Annotated[str, typer.Option(help="Comma-separated methods, or 'all'.")] = "all",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "cifar10",
    model: Annotated[str, typer.Option(help="Victim architecture.")] = "resnet18",
    recipe: Annotated[str, typer.Option(help="Victim training recipe.")] = "paper-sgd-cifar10",
    epochs: Epochs = None,
    augment: Annotated[bool, typer.Option(help="Train victims with the recipe's augmentation.")] = True,
    ratio: Annotated[float, typer.Option(help="Poisoning ratio: share of training samples protected.")] = 1.0,
    train_per_class: TrainPerClass = None,
    test_per_class: TestPerClass = None,
    preset: Annotated[
        str, typer.Option(help="Method options: paper (official defaults), paper-tue-combined, cpu or gpu.")
    ] = "paper",
    seed: Seed = 0,
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
    MODELS.get(model)
    options = preset_options(preset)
    for name, extra in parse_options(option or [], methods=names).items():
        options.setdefault(name, {}).update(extra)
    _checked_options({name: options.get(name, {}) for name in names}, fraction=ratio, seed=seed)
    check_writable(artifact_root(artifacts))
    if out is not None:
        check_writable(out, is_file=True)
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


@app.command("verify")
def verify_command(
    directory: Annotated[Path, typer.Argument(help="A release folder written by 'dememo protect --export'.")],
) -> None:
    """Check every file of an exported release against the SHA-256 in its manifest.json:
    prints OK, or names each changed, missing or added file (exit status 2)."""
    checked, problems = release_problems(directory)
    for problem in problems:
        console.print(f"{directory}: {problem}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise DataError(f"{directory}: {len(problems)} problem(s) against the manifest of {checked} files")
    console.print(f"OK: {directory}: all {checked} files match the release manifest", soft_wrap=True)
