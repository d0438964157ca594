"""Unlearning commands: unlearn and interplay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from pydantic import ValidationError
from rich.table import Table

from dememo.atomic import atomic_write_text
from dememo.cli.common import (
    Artifacts,
    DataRoot,
    Device,
    OptionPairs,
    app,
    check_writable,
    console,
    parse_options,
)
from dememo.data import load_dataset
from dememo.data.scenarios import Scenario
from dememo.errors import ConfigError
from dememo.experiments.reproduce import reproduce, stored_entries
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import CUSTOM, Spec, describe_error
from dememo.experiments.stages import StageContext
from dememo.experiments.views import VIEWS, TableView, ViewInput, as_list, table_markdown
from dememo.paths import artifact_root
from dememo.pipeline import stored_config, test_split
from dememo.runtime import resolve_device
from dememo.store import ArtifactStore
from dememo.train import accuracy
from dememo.unlearn import UNLEARNERS, unlearn_or_load
from dememo.unlearn.base import check_sets, make_config
from dememo.unlearn.jobs import parent_training_set
from dememo.unlearn.settings import SCALES

CHANCE_FACTOR = 1.5  # test accuracy at most this times 1/classes counts as "at chance"

FORGET_HELP = (
    "What to forget: class=K (every training image of class K), Du:K or Dc:K (that part of "
    "class K in --scenario), or a file of training indices (whitespace, comma or JSON list)."
)


def parse_classes(text: str) -> tuple[int, ...]:
    """'0-7' or '0,2,5' -> classes."""
    try:
        out: list[int] = []
        for part in text.split(","):
            low, dash, high = part.strip().partition("-")
            out += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    except ValueError:
        raise ConfigError(f"--classes {text!r}: expected e.g. 0-7 or 0,2,5") from None
    return tuple(out)


def forget_indices(spec: str, labels: torch.Tensor, scenario: Scenario | None) -> torch.Tensor:
    name, sep, value = spec.replace("=", ":").partition(":")
    if sep and name in ("class", "Du", "Dc"):
        try:
            cls = int(value)
        except ValueError:
            raise ConfigError(f"--forget {spec!r}: {value!r} is not a class number") from None
        if name == "class":
            if not 0 <= cls <= int(labels.max()):
                raise ConfigError(f"--forget {spec!r}: class {cls} does not exist")
            return torch.nonzero(labels == cls).flatten()
        if scenario is None:
            raise ConfigError(f"--forget {spec!r}: needs a model trained in a scenario (dememo interplay)")
        return scenario.target(cls, name).forget
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--forget {spec!r}: not class=K, Du:K, Dc:K or an existing index file")
    return read_index_file(path)


def read_index_file(path: Path) -> torch.Tensor:
    """Sample indices from a file: a JSON list of integers, or integers separated by whitespace
    or commas. Anything else (floats, booleans, nested lists, null, text that is not UTF-8) is
    refused: a float is never truncated to an index."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"--forget {path}: not a UTF-8 text file of indices ({error.reason} at byte "
                          f"{error.start})") from None  # fmt: skip
    except OSError as error:
        raise ConfigError(f"--forget {path}: cannot read it ({error.strerror or error})") from None
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ConfigError(f"--forget {path}: not a valid JSON list ({error})") from None
    else:
        values = text.replace(",", " ").split()
    indices = []
    for value in values:
        if isinstance(value, str) and value.lstrip("+-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"--forget {path}: indices must be integers, got {json.dumps(value)[:40]}")
        indices.append(value)
    try:
        return torch.tensor(indices, dtype=torch.int64)
    except (OverflowError, RuntimeError, ValueError):
        raise ConfigError(f"--forget {path}: an index does not fit a 64-bit integer") from None


@app.command("unlearn")
def unlearn_command(
    method: Annotated[str | None, typer.Argument(help="Unlearning method (see --list).")] = None,
    model_artifact: Annotated[
        Path | None, typer.Argument(help="Folder of the trained model artifact.")
    ] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="List the unlearning methods.")] = False,
    forget: Annotated[str | None, typer.Option(help=FORGET_HELP)] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset the model was trained on (default: read from the model).")
    ] = None,
    option: OptionPairs = None,
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """Unlearn a forget set from a stored model; the result is stored as an artifact.
    Prints forget, retain and test accuracy (fp32) and warns when the model is at chance."""
    if list_methods or method is None:
        _list_methods()
        return
    if not UNLEARNERS.get(method).single_model:
        raise ConfigError(f"unlearn {method}: an ensemble method, not run from the CLI; use "
                          f"dememo.unlearn.{method} from Python (see 'dememo unlearn --list')")  # fmt: skip
    if model_artifact is None or forget is None:
        raise ConfigError("unlearn: give METHOD, MODEL_ARTIFACT and --forget")
    options = parse_options(option or [], default_method=method, methods=[method]).get(method, {})
    make_config(method, **options)  # a bad option is refused before the data is read
    check_writable(artifact_root(artifacts), what="--artifacts")
    store = ArtifactStore(artifact_root(artifacts))
    parent = ArtifactStore.load_path(model_artifact)
    config = stored_config(parent)
    if dataset is not None and dataset != config.dataset:
        raise ConfigError(f"--dataset {dataset}: {model_artifact} was trained on {config.dataset!r}")
    data = load_dataset(config.dataset, data_root)
    train_set, scenario = parent_training_set(parent, data, store)
    forget_index = forget_indices(forget, train_set.labels, scenario)
    retain_index = torch.nonzero(~torch.isin(torch.arange(len(train_set)), forget_index)).flatten()
    check_sets(train_set, forget_index, retain_index, method)
    run_device = resolve_device(device)
    result = unlearn_or_load(
        method,
        parent,
        train_set,
        forget_index,
        retain_index,
        store,
        device=run_device,
        dataset=data,
        **options,
    )
    record = result.record
    console.print(
        f"{method}: forgot {record['forget_size']} samples, kept {record['retain_size']}; "
        f"{record['steps']} steps in {record['seconds']:.1f} s"
    )
    _report_accuracies(
        result.model, train_set, forget_index, retain_index, test_split(config, data), run_device
    )
    if "guarantee" in record["details"]:
        g = record["details"]["guarantee"]
        console.print(
            "guarantee: "
            + ", ".join(f"{k}={g[k]:.4g}" for k in ("epsilon", "zeta", "sigma", "T", "C0", "C1", "gamma"))
        )
    console.print(f"{'reused stored' if result.reused else 'saved'} unlearned model: {result.artifact.path}")


def _list_methods() -> None:
    table = Table("method", "scale option", "description")
    ensembles = []
    for name in UNLEARNERS:
        cls = UNLEARNERS.get(name)
        if cls.single_model:
            table.add_row(name, cls.scale_option or "-", cls.description)
        else:
            ensembles.append(name)
    console.print(table)
    for name in ensembles:
        console.print(f"{name}: an ensemble method; run it from Python (dememo.unlearn.{name}), not here")


def _report_accuracies(model, train_set, forget_index, retain_index, test_set, device) -> None:
    """Forget, retain and test accuracy (fp32), and a warning when the model is at chance."""
    values = {
        "forget": 100 * accuracy(model, train_set, indices=forget_index, device=device),
        "retain": 100 * accuracy(model, train_set, indices=retain_index, device=device),
        "test": 100 * accuracy(model, test_set, device=device),
    }
    console.print("accuracy (fp32): " + ", ".join(f"{k} {v:.2f}%" for k, v in values.items()))
    chance = 100 / test_set.num_classes
    if values["test"] <= CHANCE_FACTOR * chance:
        console.print(
            f"warning: test accuracy {values['test']:.2f}% is at chance level ({chance:.1f}% for "
            f"{test_set.num_classes} classes): the unlearning destroyed the model, not just the forget set"
        )


@app.command("interplay")
def interplay_command(
    protection: Annotated[str, typer.Option(help="Protection of the forgettable data.")] = "ue-s",
    scenario: Annotated[str, typer.Option(help="class or subset (section 6.2.1).")] = "class",
    methods: Annotated[str, typer.Option(help="Comma-separated unlearning methods.")] = "rt,if,ft,ga",
    scales: Annotated[str, typer.Option(help="Comma-separated scales: small, large.")] = "small,large",
    classes: Annotated[str, typer.Option(help="Classes to forget, e.g. 0-7.")] = "0-7",
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "cifar10",
    model: Annotated[str, typer.Option(help="Victim architecture.")] = "resnet18",
    recipe: Annotated[str, typer.Option(help="Victim (and RT) recipe.")] = "paper-sgd-unlearning",
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    train_per_class: Annotated[int | None, typer.Option(help="First N training images per class.")] = None,
    test_per_class: Annotated[int | None, typer.Option(help="First N test images per class.")] = None,
    preset: Annotated[str, typer.Option(help="Protection options: paper or cpu.")] = "paper",
    scale: Annotated[
        list[str] | None, typer.Option(help="Scale value as method.small=X, repeatable.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    mia: Annotated[bool, typer.Option(help="Also audit every model by MIA (Tables 18-25).")] = False,
    option: OptionPairs = None,
    out: Annotated[Path | None, typer.Option(help="Also write the tables as Markdown here.")] = None,
    results: Annotated[Path, typer.Option(help="Results directory (holds results.sqlite).")] = Path(
        "results"
    ),
    data_root: DataRoot = None,
    artifacts: Artifacts = None,
    device: Device = "auto",
) -> None:
    """The interplay study (Tables 10-17) from flags: a shortcut onto 'dememo reproduce'
    with one custom scale; prints the tables with the paper's values beside this run's."""
    if scenario not in ("class", "subset"):
        raise ConfigError(f"--scenario {scenario!r}: expected class or subset")
    scale_names = [s.strip() for s in scales.split(",")]
    bad = [s for s in scale_names if s not in SCALES]
    if bad:
        raise ConfigError(f"--scales: unknown {bad}; valid: {', '.join(SCALES)}")
    extra = parse_options(option or [])
    victim = {"dataset": dataset, "model": model, "recipe": recipe, "epochs": epochs,
              "train_per_class": train_per_class, "test_per_class": test_per_class}  # fmt: skip
    scale_values = {m: {k: float(v) for k, v in kv.items()} for m, kv in parse_options(scale or []).items()}
    settings = {
        "notes": "built from the flags of 'dememo interplay'", "victim": victim, "seed": seed,
        "level": scenario, "protections": [protection], "preset": preset,
        "protect_options": {protection: extra.pop(protection, {})}, "classes": list(parse_classes(classes)),
        "methods": [m.strip() for m in methods.split(",")], "scales": scale_names, "method_options": extra,
        "mia": {} if mia else None, "scale_values": scale_values,
    }  # fmt: skip
    spec = command_spec(settings)
    check_writable(results, what="--results")
    check_writable(artifact_root(artifacts), what="--artifacts")
    if out is not None:
        check_writable(out, is_file=True, what="--out")
    context = StageContext(
        artifact_root(artifacts).resolve(), data_root.resolve() if data_root else None, device
    )
    outcome = reproduce(spec, CUSTOM, results, context, log=lambda line: console.print(f"  {line}"))
    db = ResultsDB.in_directory(results, create=False)
    try:
        entries = stored_entries(db, spec.name, CUSTOM)
    finally:
        db.close()
    view = ViewInput(spec, CUSTOM, spec.settings(CUSTOM), entries)
    shown = [v for name in spec.views for v in as_list(VIEWS.get(name)(view)) if isinstance(v, TableView)]
    text = "\n".join(table_markdown(table) for table in shown)
    console.print(text, markup=False, highlight=False)
    console.print(f"{len(outcome.ran)} stages run, {len(outcome.reused)} reused; results in {results} "
                  f"(dememo report {results})")  # fmt: skip
    if out is not None:
        atomic_write_text(out, text)
        console.print(f"wrote {out}")
    outcome.raise_for_failures()


def command_spec(settings: dict) -> Spec:
    """The spec of a 'dememo interplay' call: the interplay study at one custom scale."""
    paper = {"artefact": "Tables 10-17" + (" and 18-25" if settings["mia"] is not None else ""),
             "section": "section 6.2 and Appendix B", "note": "dememo interplay (command line)"}  # fmt: skip
    name = f"interplay-{settings['level']}-command"
    views = (
        ["interplay-table", "mia-table", "mia-gap"] if settings["mia"] is not None else ["interplay-table"]
    )
    data = {"name": name, "title": f"{settings['level'].capitalize()}-level interplay (dememo interplay)",
            "study": "interplay", "paper": paper, "views": views, "scales": {CUSTOM: settings}}  # fmt: skip
    try:
        spec = Spec.model_validate(data)
        spec.settings(CUSTOM)
    except ValidationError as error:
        raise ConfigError(describe_error(name, error)) from None
    return spec
