"""protect-eval as a library call: train victims on protected data and compare with a
clean-trained one (the paper's Table 3 and Figure 4).

The orchestration is the experiments' protect-eval study
(``dememo.experiments.protect_eval``): protections and victims are stages of a
cached graph, so every artifact is reused by config hash.
"""

from __future__ import annotations

import torch

from dememo.data.imageset import Dataset
from dememo.experiments.protect_eval import (
    ProtectEvalSettings,
    ProtectionResult,
    Victim,
    protection_rows,
    results_markdown,
)
from dememo.experiments.reproduce import run_planned
from dememo.experiments.results import ResultsDB
from dememo.experiments.stages import StageContext
from dememo.experiments.study import STUDIES
from dememo.reference import table3
from dememo.store import ArtifactStore
from dememo.train import Recipe

__all__ = ["ProtectionResult", "evaluate_protection", "results_markdown"]


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
    """Clean baseline plus one victim per method; a failed stage raises ExperimentError naming it."""
    column = f"{dataset.name}_{paper_model}"
    victim = Victim.model_construct(  # already-validated inputs; any loaded dataset name is fine
        dataset=dataset.name, model=model, recipe=recipe, epochs=None, train_per_class=train_per_class,
        test_per_class=test_per_class, precision="auto", paper_column=column if column in table3() else None,
    )  # fmt: skip
    settings = ProtectEvalSettings(methods=methods, options=options or {}, ratios=[ratio], seed=seed,
                                   victims=[victim])  # fmt: skip
    context = StageContext(store.root, device=str(device), preloaded=(dataset,))
    outcome, entries = run_planned(STUDIES.get("protect-eval").plan(settings), ResultsDB.in_memory(), context)
    outcome.raise_for_failures()
    return protection_rows(entries, victim=0, augment=True, ratio=ratio, paper_column=victim.paper_column)
