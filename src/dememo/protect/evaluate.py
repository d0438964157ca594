"""protect-eval: train victims on protected data and compare with a clean-trained one
(the paper's Table 3 and Figure 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dememo.data.imageset import Dataset
from dememo.pipeline import TrainConfig, train_or_load, training_split
from dememo.protect.jobs import protect_or_load
from dememo.reference import paper_accuracy
from dememo.store import ArtifactStore
from dememo.train import Recipe


@dataclass
class ProtectionResult:
    method: str  # "clean" for the baseline
    test_accuracy: float  # fraction
    drop_points: float  # clean accuracy minus this, in percentage points
    paper_accuracy: float | None  # the paper's Table 3 value (%), for its own model
    generation_seconds: float | None
    train_seconds: float
    changed_images: int | None


def evaluate_protection(
    dataset: Dataset,
    methods: list[str],
    *,
    model: str,
    recipe: Recipe,
    store: ArtifactStore,
    device: torch.device | str = "cpu",
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    ratio: float = 1.0,
    seed: int = 0,
    options: dict[str, dict[str, object]] | None = None,
    paper_model: str = "resnet18",
) -> list[ProtectionResult]:
    """Clean baseline plus one victim per method; every artifact is cached by config hash."""
    options = options or {}
    base = TrainConfig(dataset=dataset.name, model=model, recipe=recipe, seed=seed,
                       train_per_class=train_per_class, test_per_class=test_per_class)  # fmt: skip
    clean = train_or_load(base, dataset, store, device).artifact.metrics
    rows = [ProtectionResult("clean", clean["test_accuracy"], 0.0,
                             paper_accuracy(dataset.name, paper_model, "clean"), None,
                             clean["train_seconds"], None)]  # fmt: skip
    train_set = training_split(base, dataset)
    for method in methods:
        protected = protect_or_load(method, dataset, train_set, store, train_per_class=train_per_class,
                                    device=device, fraction=ratio, seed=seed,
                                    **options.get(method, {}))  # fmt: skip
        released = protected.perturbation.apply(train_set)
        victim_config = base.model_copy(update={"perturbation": protected.key})
        victim = train_or_load(victim_config, dataset, store, device, protected=released).artifact.metrics
        rows.append(ProtectionResult(
            method, victim["test_accuracy"], 100 * (clean["test_accuracy"] - victim["test_accuracy"]),
            paper_accuracy(dataset.name, paper_model, method), protected.artifact.metrics["seconds"],
            victim["train_seconds"], protected.artifact.metrics["changed_images"],
        ))  # fmt: skip
    return rows


def results_markdown(rows: list[ProtectionResult], paper_label: str) -> str:
    """The results as a Markdown table."""
    columns = ["method", "test acc (%)", "drop (points)", f"paper {paper_label} (%)"]
    columns += ["generation (s)", "victim (s)"]
    lines = ["| " + " | ".join(columns) + " |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [
            r.method,
            f"{100 * r.test_accuracy:.2f}",
            f"{r.drop_points:.1f}",
            f"{r.paper_accuracy:.2f}" if r.paper_accuracy is not None else "-",
            f"{r.generation_seconds:.0f}" if r.generation_seconds is not None else "-",
            f"{r.train_seconds:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
