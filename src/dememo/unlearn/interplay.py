"""The interplay study (SoK section 6.2, Tables 10-17): unlearning from a model trained
on partly protected data, per forgetting target, method and scale.

``run_interplay`` builds everything from stored artifacts (perturbation, Before model,
one unlearned model per cell; each cached by its config hash, so a rerun or an
interrupted run reuses what exists) and returns one ``Cell`` per table entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from dememo.data.imageset import Dataset, ImageSet
from dememo.data.scenarios import ScenarioSettings, Target, build_scenario
from dememo.pipeline import TrainConfig, train_or_load
from dememo.protect.jobs import protect_or_load
from dememo.reference import interplay_tables
from dememo.store import ArtifactStore
from dememo.train import Recipe, accuracy
from dememo.unlearn.base import UNLEARNERS
from dememo.unlearn.jobs import unlearn_or_load
from dememo.unlearn.settings import SCALES, TABLE_NAMES, paper_scale

ROW_ORDER = ["RT", "IF_small", "IF_large", "FT_small", "FT_large", "GA_small", "GA_large", "Before"]
COLUMNS = {
    "subset": ("Du", "Duc", "Dc", "Dt"),
    "class_protected": ("Du", "Duc", "Dut", "Dtr"),
    "class_clean": ("Dc", "Dct", "Dtr"),
}


@dataclass
class Cell:
    forget_set: str  # subset: Du, Dc, or '-' for Before; class: 'class<k>'
    method: str  # RT, IF_small, ..., Before
    cls: int
    column: str
    value: float  # accuracy, %
    paper: float | None = None
    arrow: bool = False  # subset, Du forgotten by FT: Acc(Duc) above the Before model's


@dataclass
class InterplayResult:
    protection: str
    level: str
    cells: list[Cell]
    scales: dict[str, dict[str, float]]  # method -> scale -> value used (class level / Du forget set)
    seconds: float
    unlearn_seconds: dict[str, float] = field(default_factory=dict)  # row label -> total seconds


def evaluate(
    model: nn.Module, target: Target, sources: dict[str, ImageSet], device: torch.device
) -> dict[str, float]:
    return {
        e.name: 100 * accuracy(model, sources[e.source], indices=e.indices, device=device)
        for e in target.evals
    }


def row_label(method: str, scale: str | None) -> str:
    return "RT" if scale is None else f"{method.upper()}_{scale}"


def run_interplay(
    dataset: Dataset,
    *,
    protection: str = "ue-s",
    level: str = "class",
    methods: tuple[str, ...] = ("rt", "if", "ft", "ga"),
    scales: tuple[str, ...] = SCALES,
    classes: tuple[int, ...] = tuple(range(8)),
    model: str = "resnet18",
    recipe: Recipe,
    store: ArtifactStore,
    device: torch.device | str = "cpu",
    seed: int = 0,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    scenario_options: dict[str, object] | None = None,
    protect_options: dict[str, object] | None = None,
    scale_values: dict[str, dict[str, float]] | None = None,
    method_options: dict[str, dict[str, object]] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> InterplayResult:
    """Protect, train the Before model, unlearn every target and measure accuracies.

    ``scale_values`` ({method: {scale: value}}) replaces the paper's Tables 8-9 values
    (needed when the setting differs from the paper's); at subset level a value given
    here applies to both forget sets.
    """
    started, device = time.perf_counter(), torch.device(device)
    for method in methods:
        UNLEARNERS.get(method)
    train_set = dataset.train.head(train_per_class, f"{dataset.name}/train-subset")
    test_set = dataset.test.head(test_per_class, f"{dataset.name}/test-subset")
    scenario = build_scenario(
        ScenarioSettings(level=level, seed=seed, **(scenario_options or {})), train_set, test_set
    )
    for cls in classes:
        scenario.check_class(cls)
    covered = {"classes": scenario.settings.protected_classes} if level == "class" else {}
    protected = protect_or_load(
        protection,
        dataset,
        train_set,
        store,
        train_per_class=train_per_class,
        device=device,
        seed=seed,
        **covered,
        **(protect_options or {}),
    )
    released = scenario.release(train_set, protected.perturbation.apply(train_set))
    log(f"protection {protection}: {'reused' if protected.reused else 'made'} {protected.artifact.path}")
    before_config = TrainConfig(
        dataset=dataset.name,
        model=model,
        recipe=recipe,
        seed=seed,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        perturbation=f"{protected.key}/{scenario.key}",
    )
    before = train_or_load(before_config, dataset, store, device, protected=released)
    log(f"Before model: {'reused' if before.reused else 'trained'} {before.artifact.path}")
    sources = {"released": released, "clean": train_set, "test": test_set}
    paper = interplay_tables()
    table_name = TABLE_NAMES.get(protection, protection)
    cells: list[Cell] = []
    used: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}

    def add(forget_set: str, label: str, cls: int, values: dict[str, float]) -> None:
        for column, value in values.items():
            ref = paper.get((table_name, level, forget_set, label, cls, column), (None, False))[0]
            cells.append(Cell(forget_set, label, cls, column, value, ref))

    for cls in classes:
        before_values: dict[str, float] | None = None
        for part in scenario.parts(cls):
            target = scenario.target(cls, part)
            forget_set = part if level == "subset" else f"class{cls}"
            before_values = before_values or evaluate(before.model, target, sources, device)
            runs = [(m, None) for m in methods if m == "rt"] + [
                (m, s) for m in methods if m != "rt" for s in scales
            ]
            for method, scale in runs:
                options = dict((method_options or {}).get(method, {}))
                if scale is not None:
                    option = UNLEARNERS.get(method).scale_option
                    value = (scale_values or {}).get(method, {}).get(scale)
                    if value is None:
                        value = paper_scale(protection, level, method, scale, part)
                    options[option] = value
                    if level == "class" or part == "Du":
                        used.setdefault(method, {})[scale] = value
                label = row_label(method, scale)
                result = unlearn_or_load(
                    method,
                    before.artifact,
                    released,
                    target.forget,
                    target.retain,
                    store,
                    device=device,
                    **options,
                )
                seconds[label] = seconds.get(label, 0.0) + result.record["seconds"]
                values = evaluate(result.model, target, sources, device)
                add(forget_set, label, cls, values)
                if level == "subset" and part == "Du" and method == "ft":
                    duc = next(c for c in cells[-len(values) :] if c.column == "Duc")
                    duc.arrow = duc.value > before_values["Duc"]
                log(
                    f"class {cls} {part} {label}: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in values.items())
                    + (" (reused)" if result.reused else f" ({result.record['seconds']:.0f} s)")
                )
        add("-" if level == "subset" else f"class{cls}", "Before", cls, before_values)
    return InterplayResult(protection, level, cells, used, time.perf_counter() - started, seconds)


def _cell_text(cell: Cell | None, with_paper: bool) -> str:
    if cell is None:
        return ""
    text = f"{cell.value:.2f}" + ("↑" if cell.arrow else "")
    if with_paper:
        text += f" ({cell.paper:.2f})" if cell.paper is not None else " (-)"
    return text


def interplay_markdown(result: InterplayResult, with_paper: bool = True) -> str:
    """The layout of Tables 10-13 (subset: forget-set blocks, then Before) or 14-17
    (class: one row per method); each cell 'ours (paper)' when ``with_paper``."""
    index = {(c.forget_set, c.method, c.cls, c.column): c for c in result.cells}
    classes = sorted({c.cls for c in result.cells})
    labels = [r for r in ROW_ORDER if any(c.method == r for c in result.cells)]
    header, keys = [], []
    for cls in classes:
        cols = [c.column for c in result.cells if c.cls == cls and c.method == "Before"]
        header += [f"C{cls} {col}" for col in cols]
        keys += [(cls, col) for col in cols]
    if result.level == "subset":
        lines = [
            "| Forgetting set | Method | " + " | ".join(header) + " |",
            "|---|---|" + "---:|" * len(header),
        ]
        blocks = [(part, [lb for lb in labels if lb != "Before"]) for part in ("Du", "Dc")] + [
            ("-", ["Before"])
        ]
        for part, rows in blocks:
            for label in rows:
                cells = [_cell_text(index.get((part, label, cls, col)), with_paper) for cls, col in keys]
                lines.append(f"| {part} | {label} | " + " | ".join(cells) + " |")
    else:
        lines = ["| Method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
        for label in labels:
            cells = [_cell_text(index.get((f"class{cls}", label, cls, col)), with_paper) for cls, col in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
