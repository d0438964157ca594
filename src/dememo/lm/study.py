"""The LM case study (SoK section 6.3.3): Table 4 and Figure 12 on a small causal LM.

Per task of a labeled text corpus (one binary instruction task per category):
fine-tune on clean data (Clean) and on RegText-protected data (RegText), then forget the
task from the RegText model with RT, GA, NPO and FT (one run per task, the reading of
Table 4 in FACTS 5) and measure exact-match accuracy on the task's clean held-out
examples. The up-arrow marks methods more accurate than the RegText model they started
from. Figure 12: the recovery attack on each unlearned model, eta relative to ||theta||.
"""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from dememo.atomic import atomic_write_text
from dememo.audit.plots import new_axes, save_figure
from dememo.audit.recovery import RecoveryCurve
from dememo.errors import ConfigError
from dememo.lm.batches import accuracy, encode
from dememo.lm.model import SMOLLM2, LanguageModel, load_lm
from dememo.lm.recovery import lm_recovery_curve
from dememo.lm.train import LMRecipe, finetune, load_lm_weights, save_lm
from dememo.lm.unlearn import LMContext, lm_unlearn
from dememo.progress import make_progress
from dememo.store import ArtifactStore
from dememo.text.corpus import TextSet, load_bbc_news, load_labeled_text
from dememo.text.protect import protect_text
from dememo.text.tasks import Example, build_tasks

METHODS = ("rt", "ga", "npo", "ft")
ATTACKED = ("ga", "npo", "ft", "rt")


class StudyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scale: Literal["smoke", "cpu", "paper"]
    model: str
    tasks: tuple[str, ...] = ("business", "sports", "tech")
    train_per_task: int | None = Field(..., ge=2)  # None: every article of the category
    test_per_task: int | None = Field(..., ge=2)
    max_words: int | None = Field(..., ge=1)
    test_fraction: float = 0.2
    recipe: LMRecipe
    unlearn: dict[str, dict[str, Any]]
    regtext: dict[str, Any] = {}
    etas: tuple[float, ...]
    relative_eta: bool = True
    attack_per_task: int = Field(8, ge=1)
    recovery: LMRecipe
    seed: int = 0


def preset(scale: str, model: str | None = None) -> StudyConfig:
    """smoke: a tiny random Llama, seconds per model (CI); cpu: SmolLM2-135M on a few
    dozen short examples per task; paper: the paper's 10 epochs on every article (needs a
    GPU; the paper's Mistral-7B-v0.3 goes in ``model``)."""
    if scale == "smoke":
        return StudyConfig(
            scale="smoke",
            model=model or "tiny:16x2",
            train_per_task=8,
            test_per_task=8,
            max_words=12,
            recipe=LMRecipe(epochs=3, lr=3e-3, batch_size=8),
            unlearn={m: {"epochs": 1, "lr": 1e-3} for m in METHODS if m != "rt"},
            etas=(0.0, 0.02),
            attack_per_task=4,
            recovery=LMRecipe(epochs=1, lr=1e-3, batch_size=4),
        )
    if scale == "cpu":
        return StudyConfig(
            scale="cpu",
            model=model or SMOLLM2,
            train_per_task=32,
            test_per_task=32,
            max_words=48,
            recipe=LMRecipe(epochs=2, lr=5e-5, batch_size=8),
            unlearn={m: {"epochs": 1, "lr": 2e-5} for m in METHODS if m != "rt"},
            etas=(0.0, 0.001, 0.003, 0.01),
            attack_per_task=8,
            recovery=LMRecipe(epochs=2, lr=5e-5, batch_size=8),
        )
    if scale == "paper":
        return StudyConfig(
            scale="paper",
            model=model or SMOLLM2,
            train_per_task=None,
            test_per_task=None,
            max_words=256,
            recipe=LMRecipe(epochs=10, lr=2e-5, batch_size=16),
            unlearn={m: {"epochs": 2, "lr": 1e-5} for m in METHODS if m != "rt"},
            etas=(0.0, 0.001, 0.003, 0.01, 0.03),
            attack_per_task=32,
            recovery=LMRecipe(epochs=5, lr=2e-5, batch_size=16),
        )
    raise ConfigError(f"unknown scale {scale!r}; valid: smoke, cpu, paper")


@dataclass
class StudyResult:
    config: StudyConfig
    rows: list[dict[str, Any]]
    curves: dict[str, list[RecoveryCurve]]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "table4": self.rows,
            "notes": self.notes,
            "figure12": {t: [c.__dict__ for c in cs] for t, cs in self.curves.items()},
        }

    def markdown(self) -> str:
        head = "| task | Clean | RegText | RT | GA | NPO | FT |\n|---|---|---|---|---|---|---|\n"
        lines = []
        for r in self.rows:
            cells = [
                f"{100 * r[k]:.2f}" + (" ↑" if k.upper() in r["up_arrow"] else "")
                for k in ("clean", "regtext", "rt", "ga", "npo", "ft")
            ]
            lines.append(f"| {r['task']} | " + " | ".join(cells) + " |")
        return head + "\n".join(lines) + "\n"

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "results.json", json.dumps(self.to_dict(), indent=2))
        atomic_write_text(folder / "table4.md", self.markdown())
        with open(folder / "table4.csv.tmp", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
        (folder / "table4.csv.tmp").replace(folder / "table4.csv")
        self.plot(folder / "figure12.png")

    def plot(self, path: Path) -> None:
        unit = "eta / ||theta||" if self.config.relative_eta else "eta (absolute)"
        figure, axes = new_axes(f"LM recovery attack ({self.config.scale})", unit, "forget-task accuracy")
        for task, curves in self.curves.items():
            for c in curves:
                axes.plot(c.etas, c.accuracies, marker="o", ms=3, label=f"{task}: {c.name}")
        axes.legend(fontsize=6)
        save_figure(figure, path)


def load_corpus(data: Path | None) -> tuple[TextSet, list[str]]:
    if data is None:
        corpus, skipped = load_bbc_news()
        note = f"BBC News: skipped {len(skipped)} file(s) that are not valid UTF-8: {skipped}"
        return corpus, [note] if skipped else []
    return load_labeled_text(data), []


def protect_examples(
    examples: list[Example], options: dict[str, Any], seed: int
) -> tuple[list[Example], dict]:
    result = protect_text(
        "regtext", [e.text for e in examples], [e.label for e in examples], **{"seed": seed, **options}
    )
    return [e.with_text(t) for e, t in zip(examples, result.texts, strict=True)], result.details


def run_study(
    config: StudyConfig,
    *,
    data: Path | None = None,
    artifacts: Path | None = None,
    device: torch.device | str = "cpu",
) -> StudyResult:
    device = torch.device(device)
    corpus, notes = load_corpus(data)
    train_set, test_set = corpus.split(config.test_fraction, seed=config.seed)
    tasks = list(config.tasks)
    train = build_tasks(train_set, tasks, config.train_per_task, seed=config.seed, max_words=config.max_words)
    test = build_tasks(
        test_set, tasks, config.test_per_task, seed=config.seed + 1, max_words=config.max_words
    )
    clean_all = [e for t in tasks for e in train[t]]
    protected_all, details = protect_examples(clean_all, config.regtext, config.seed)
    notes.append(f"RegText words (label 1 = yes, 0 = no): {details['words']}")
    protected, start = {}, 0
    for t in tasks:
        protected[t], start = protected_all[start : start + len(train[t])], start + len(train[t])
    vocabulary = [e.prompt() for e in clean_all + protected_all] + [
        e.prompt() for t in tasks for e in test[t]
    ]

    pretrained = load_lm(config.model, texts=vocabulary, seed=config.seed)  # loaded once, copied

    def base() -> LanguageModel:
        return LanguageModel(copy.deepcopy(pretrained.model), pretrained.tokenizer, pretrained.source)

    tokenizer, pad = pretrained.tokenizer, pretrained.tokenizer.pad_token_id
    enc = {
        name: {t: encode(ex[t], tokenizer) for t in tasks}
        for name, ex in (("clean", train), ("protected", protected), ("test", test))
    }
    store = ArtifactStore(artifacts) if artifacts is not None else None
    source = {
        "study": config.model_dump(
            mode="json", exclude={"unlearn", "etas", "recovery", "relative_eta", "attack_per_task"}
        ),
        "data": str(data) if data else "bbc-news",
    }

    def trained(kind: str, lm: LanguageModel) -> torch.nn.Module:
        key = {**source, "training_data": kind}
        if store is not None and load_lm_weights(store, key, lm.model) is not None:
            return lm.model.to(device)
        items = [i for t in tasks for i in enc[kind][t]]
        model = finetune(lm.model, items, config.recipe, pad_id=pad, device=device, seed=config.seed)
        if store is not None:
            save_lm(store, key, model, {})
        return model

    rows, curves = [], {}
    with make_progress() as bar:
        job = bar.add_task("LM study", total=2 + len(tasks) * (len(METHODS) + 1), status="")
        clean_model = trained("clean", base())
        bar.advance(job)
        regtext_model = trained("protected", base())
        bar.advance(job)
        context = LMContext(base=lambda: base().model, recipe=config.recipe, pad_id=pad, device=device)
        for t in tasks:
            evaluate = enc["test"][t]
            retain = [i for other in tasks if other != t for i in enc["protected"][other]]
            row = {
                "task": t,
                "clean": accuracy(clean_model, evaluate, pad, device),
                "regtext": accuracy(regtext_model, evaluate, pad, device),
            }
            unlearned = {}
            for method in METHODS:
                unlearned[method] = lm_unlearn(
                    method,
                    copy.deepcopy(regtext_model),
                    enc["protected"][t],
                    retain,
                    context,
                    seed=config.seed,
                    **config.unlearn.get(method, {}),
                )
                row[method] = accuracy(unlearned[method], evaluate, pad, device)
                bar.advance(job)
            row["up_arrow"] = ",".join(m.upper() for m in ("ga", "npo", "ft") if row[m] > row["regtext"])
            rows.append(row)
            attack = enc["clean"][t][: config.attack_per_task]
            curves[t] = [
                lm_recovery_curve(
                    m.upper(),
                    unlearned[m],
                    attack,
                    evaluate,
                    list(config.etas),
                    recipe=config.recovery,
                    pad_id=pad,
                    device=device,
                    relative=config.relative_eta,
                    seed=config.seed,
                )
                for m in ATTACKED
            ]
            bar.advance(job)
    return StudyResult(config, rows, curves, notes)
