"""Binary instruction tasks for a causal LM: one task per category of a labeled text set.

The paper's unit of forgetting is an NI "Polarity" task (binary sentiment/toxicity,
FACTS 5). On a topic corpus each category becomes one binary task: "Is this article
about <category>? Answer yes or no." with answer "yes" for the category's articles and
"no" for an equal number drawn from the other categories.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from dememo.errors import ConfigError, DataError
from dememo.text.corpus import TextSet

ANSWERS = ("no", "yes")  # index = label of the binary task


@dataclass(frozen=True)
class Example:
    task: str
    text: str
    label: int  # 1: yes, 0: no

    @property
    def answer(self) -> str:
        return ANSWERS[self.label]

    def prompt(self) -> str:
        return f"Is this article about {self.task}? Answer yes or no.\nArticle: {self.text}\nAnswer:"

    def with_text(self, text: str) -> Example:
        return replace(self, text=text)


def truncate_words(text: str, max_words: int | None) -> str:
    words = text.split()
    return " ".join(words if max_words is None else words[:max_words])


def check_tasks(data: TextSet, tasks: list[str]) -> None:
    unknown = [t for t in tasks if t not in data.classes]
    if unknown:
        raise ConfigError(f"unknown task(s) {unknown} for {data.name}; valid: {', '.join(data.classes)}")
    if not tasks:
        raise ConfigError("no tasks given")


def build_task(
    data: TextSet, task: str, per_task: int | None, *, seed: int = 0, max_words: int | None = None
) -> list[Example]:
    """Balanced yes/no examples for ``task``: ``per_task // 2`` of each (None: all the
    category's articles, with as many negatives), in a seeded shuffled order."""
    check_tasks(data, [task])
    c = data.classes.index(task)
    rng = random.Random(f"{seed}-{task}")
    positives = [i for i, label in enumerate(data.labels) if label == c]
    negatives = [i for i, label in enumerate(data.labels) if label != c]
    half = len(positives) if per_task is None else per_task // 2
    if half < 1 or half > min(len(positives), len(negatives)):
        raise DataError(
            f"{data.name}: task {task!r} has {len(positives)} articles and {len(negatives)} "
            f"others; cannot draw {half} of each"
        )
    chosen = [(i, 1) for i in rng.sample(positives, half)] + [(i, 0) for i in rng.sample(negatives, half)]
    rng.shuffle(chosen)
    return [Example(task, truncate_words(data.texts[i], max_words), label) for i, label in chosen]


def build_tasks(
    data: TextSet, tasks: list[str], per_task: int | None, *, seed: int = 0, max_words: int | None = None
) -> dict[str, list[Example]]:
    check_tasks(data, tasks)
    return {t: build_task(data, t, per_task, seed=seed, max_words=max_words) for t in tasks}
