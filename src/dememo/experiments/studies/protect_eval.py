"""The protect-eval study: victims trained on protected data next to a clean-trained one
(the paper's Table 3, Figure 4 with and without augmentation, Figure 19 over poisoning ratios).

Per victim setting and augmentation choice: one clean train stage, and per
(ratio, method) a protect stage feeding a train stage. A protection does not
depend on the victim's augmentation, so Figure 4's two victims share it.

``evaluate_protection`` is protect-eval as a library call (the ``dememo protect-eval``
command): the same plan on one loaded dataset, run with an in-memory results database,
so every artifact is reused by config hash.

``seeds`` repeats the plan per seed (default ``[seed]``; label ``seed``): each seed's
protections and victims take that seed, and the base seed's stages are the single-seed
plan's (same keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dememo.data.imageset import Dataset
from dememo.experiments.reproduce import run_planned
from dememo.experiments.results import ResultsDB
from dememo.experiments.stages import StageContext
from dememo.experiments.stages.protect import protect_stage
from dememo.experiments.stages.train import train_stage
from dememo.experiments.studies.base import Entry, Planned, Study, register_study
from dememo.experiments.studies.common import Victim, known, known_preset
from dememo.pipeline import TrainConfig
from dememo.protect import PROTECTORS
from dememo.protect.presets import preset_options
from dememo.reference import paper_accuracy, table3
from dememo.store import ArtifactStore
from dememo.train import Recipe


class ProtectEvalSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    methods: list[str] = Field(min_length=1)
    preset: str = "paper"
    options: dict[str, dict[str, Any]] = {}
    ratios: list[float] = Field([1.0], min_length=1)
    augment: list[bool] = Field([True], min_length=1)
    seed: int = 0
    seeds: list[int] | None = Field(
        None, min_length=1, description="repeat the plan per seed (default [seed])"
    )
    victims: list[Victim] = Field(min_length=1)
    notes: str = ""

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        return [known(PROTECTORS, m) for m in value]

    _preset = field_validator("preset")(lambda cls, v: known_preset(v))

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: list[float]) -> list[float]:
        if any(not 0 < r <= 1 for r in value):
            raise ValueError(f"poisoning ratios must be in (0, 1], got {value}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {value}")
        return value

    def seed_list(self) -> list[int]:
        """The seeds the plan repeats over (``seeds``, or the one ``seed``)."""
        return list(self.seeds) if self.seeds else [self.seed]

    def method_options(self, method: str, ratio: float, seed: int | None = None) -> dict[str, object]:
        options = preset_options(self.preset).get(method, {})
        options.update(self.options.get(method, {}))
        return {**options, "fraction": ratio, "seed": self.seed if seed is None else seed}


@register_study
class ProtectEval(Study):
    name = "protect-eval"
    Settings = ProtectEvalSettings

    def plan(self, settings: ProtectEvalSettings) -> list[Planned]:  # type: ignore[override]
        return [item for seed in settings.seed_list() for item in self.plan_seed(settings, seed)]

    @staticmethod
    def plan_seed(settings: ProtectEvalSettings, seed: int) -> list[Planned]:
        """The stages of one seed (label ``seed``); the base seed's are the single-seed plan's."""
        planned = []
        for index, victim in enumerate(settings.victims):
            for augment in settings.augment:
                base = TrainConfig(
                    dataset=victim.dataset,
                    model=victim.model,
                    recipe=victim.recipe_for(augment),
                    seed=seed,
                    train_per_class=victim.train_per_class,
                    test_per_class=victim.test_per_class,
                    precision=victim.precision,
                )
                where = {"victim": index, "augment": augment, "seed": seed}
                clean = {**where, "method": "clean", "ratio": 0.0, "role": "victim"}
                planned.append(Planned(train_stage(base), clean))
                for ratio in settings.ratios:
                    for method in settings.methods:
                        protect = protect_stage(method, victim.dataset, victim.train_per_class,
                                                **settings.method_options(method, ratio, seed))  # fmt: skip
                        labels = {**where, "method": method, "ratio": ratio}
                        planned.append(Planned(protect, {**labels, "role": "protect"}))
                        planned.append(Planned(train_stage(base, protect), {**labels, "role": "victim"}))
        return planned


@dataclass
class ProtectionResult:
    method: str  # "clean" for the baseline
    test_accuracy: float  # fraction
    drop_points: float  # clean accuracy minus this, in percentage points
    paper_accuracy: float | None  # the paper's Table 3 value (%), for its own model
    generation_seconds: float | None
    train_seconds: float
    changed_images: int | None
    test_size: int | None = None  # evaluation images (for the Wilson interval), when recorded


def protection_rows(
    entries: list[Entry],
    *,
    victim: int,
    augment: bool,
    ratio: float,
    paper_column: str | None,
    seed: int | None = None,
) -> list[ProtectionResult]:
    """Clean baseline first, then one row per method, for one victim setting and seed (any seed
    when None; finished stages only)."""
    dataset, _, model = (paper_column or "_").partition("_")

    def pick(method: str, role: str) -> Entry | None:
        wanted = {"victim": victim, "method": method, "role": role}
        wanted["ratio"] = 0.0 if method == "clean" else ratio
        if seed is not None:
            wanted["seed"] = seed
        if role == "victim":  # a protection serves every augmentation choice
            wanted["augment"] = augment
        for entry in entries:
            if all(entry.labels.get(k) == v for k, v in wanted.items()):
                return entry
        return None

    clean = pick("clean", "victim")
    if clean is None or clean.output is None:
        return []
    clean_acc = clean.metric("accuracy", "test")

    def size(entry: Entry) -> int | None:
        n = entry.metric("n", "test")
        return None if n is None else int(n)

    rows = [ProtectionResult("clean", clean_acc, 0.0, paper_accuracy(dataset, model, "clean"), None,
                             clean.metric("train_seconds"), None, size(clean))]  # fmt: skip
    methods = dict.fromkeys(e.labels["method"] for e in entries if e.labels.get("role") == "victim")
    for method in methods:
        trained, protected = pick(method, "victim"), pick(method, "protect")
        if trained is None or trained.output is None or protected is None:
            continue
        accuracy = trained.metric("accuracy", "test")
        changed = protected.metric("changed_images", "train")
        rows.append(ProtectionResult(
            method, accuracy, 100 * (clean_acc - accuracy), paper_accuracy(dataset, model, method),
            protected.metric("generation_seconds"), trained.metric("train_seconds"),
            None if changed is None else int(changed), size(trained),
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
    outcome, entries = run_planned(ProtectEval().plan(settings), ResultsDB.in_memory(), context)
    outcome.raise_for_failures()
    return protection_rows(entries, victim=0, augment=True, ratio=ratio, paper_column=victim.paper_column)
