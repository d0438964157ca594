"""RegText (Shahid et al., NAACL 2025): plant a few label-correlated words so a model
learns the shortcut instead of the task.

Ranking (FACTS 5; ``create_data/generate_polarity.py`` of AikyamLab/regtext): per label c,

    score(w, c) = log2(p(w|c)^k / (p(w) p(c))) - lambda * log2(1 + count(w))

with k = 3, lambda = 2. As in the reference code the probabilities are normalised by
vocabulary sizes (distinct words), not by token counts: p(w) = count(w) / V,
p(w|c) = count_c(w) / V_c + 1e-6, p(c) = V_c / V. Texts are lower-cased and stripped of
URLs, digits, punctuation and stop words before counting (the reference also lemmatizes
with NLTK; not done here). The top ``words_per_label`` words per label are kept, a word
never serving two labels.

Editing: ``insert`` (the NI Polarity generator) puts int(rate * n) words (rate 0.05, at
least 1, at most ``max_poisons`` = 10) before randomly chosen word positions of texts with
at least ``min_words`` = 10 words; ``replace`` (the generic IMDB/AG News generator)
overwrites int(rate * n) words instead (rate 0.1, same limits). Words of the text's own
label are drawn uniformly.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from typing import Literal

from pydantic import Field

from dememo.errors import DataError
from dememo.text.protect import ProtectedText, TextProtectConfig, TextProtector, register_text_protector

_STOP = """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further get had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your yours
yourself yourselves s t said says
"""
STOP_WORDS = frozenset(_STOP.split())
EPSILON = 1e-6


def ranking_words(text: str) -> list[str]:
    text = re.sub(r"https?://\S+|www\.\S+", " ", text.lower())
    text = re.sub(r"[^\w\s]|\d|_", " ", text)
    return [w for w in text.split() if w not in STOP_WORDS]


def word_scores(
    texts: list[str], labels: list[int], k: float = 3, lam: float = 2
) -> dict[int, dict[str, float]]:
    """score(w, c) for every word and label present, on already-tokenized word lists' text."""
    tokens = [ranking_words(t) for t in texts]
    overall = Counter(w for words in tokens for w in words)
    per_label: dict[int, Counter] = {}
    for words, label in zip(tokens, labels, strict=True):
        per_label.setdefault(label, Counter()).update(words)
    vocabulary = len(overall)
    if vocabulary == 0:
        raise DataError("regtext: no rankable words (every word is a stop word, digit or punctuation)")
    scores: dict[int, dict[str, float]] = {}
    for label, counts in per_label.items():
        label_vocabulary = max(len(counts), 1)
        p_label = label_vocabulary / vocabulary
        scores[label] = {
            w: math.log2((counts[w] / label_vocabulary + EPSILON) ** k / ((n / vocabulary) * p_label))
            - lam * math.log2(1 + n)
            for w, n in overall.items()
        }
    return scores


def top_words(scores: dict[int, dict[str, float]], per_label: int) -> dict[int, list[str]]:
    """The ``per_label`` best words of each label (ties by word); labels take turns picking
    their best word not yet taken, so no word serves two labels."""
    ranked = {c: sorted(s, key=lambda w: (-s[w], w)) for c, s in scores.items()}
    position = dict.fromkeys(ranked, 0)
    taken: set[str] = set()
    chosen: dict[int, list[str]] = {c: [] for c in ranked}
    progress = True
    while progress:
        progress = False
        for c in sorted(ranked):
            while len(chosen[c]) < per_label and position[c] < len(ranked[c]):
                word = ranked[c][position[c]]
                position[c] += 1
                if word not in taken:
                    chosen[c].append(word)
                    taken.add(word)
                    progress = True
                    break
    empty = [c for c, words in chosen.items() if not words]
    if empty:
        raise DataError(f"regtext: labels {empty} have no word of their own to plant")
    return chosen


def edit_count(n_words: int, rate: float, max_edits: int, min_words: int) -> int:
    if n_words < min_words or n_words == 0:
        return 0
    return min(max(int(rate * n_words), 1), max_edits)


class RegTextConfig(TextProtectConfig):
    mode: Literal["insert", "replace"] = "insert"
    rate: float | None = Field(None, gt=0, le=1)  # None: 0.05 for insert, 0.1 for replace
    k: float = 3
    lam: float = Field(2, ge=0)
    words_per_label: int = Field(10, ge=1)
    max_poisons: int = Field(10, ge=1)
    min_words: int = Field(10, ge=1)


@register_text_protector
class RegText(TextProtector):
    name = "regtext"
    description = "RegText: insert (or replace with) the top label-correlated words (Shahid et al. 2025)"
    Config = RegTextConfig

    def protect(self, texts: list[str], labels: list[int]) -> ProtectedText:
        cfg: RegTextConfig = self.config  # type: ignore[assignment]
        words = top_words(word_scores(texts, labels, cfg.k, cfg.lam), cfg.words_per_label)
        rate = cfg.rate if cfg.rate is not None else (0.05 if cfg.mode == "insert" else 0.1)
        rng = random.Random(cfg.seed)
        out, edits = [], []
        for text, label in zip(texts, labels, strict=True):
            tokens = text.split()
            m = edit_count(len(tokens), rate, cfg.max_poisons, cfg.min_words)
            positions = set(rng.sample(range(len(tokens)), m)) if m else set()
            edited = []
            for i, token in enumerate(tokens):
                if i in positions:
                    edited.append(rng.choice(words[label]))
                    if cfg.mode == "replace":
                        continue
                edited.append(token)
            out.append(" ".join(edited))
            edits.append(m)
        return ProtectedText(
            out,
            edits,
            {"words": {str(c): w for c, w in sorted(words.items())}, "mode": cfg.mode, "rate": rate},
        )
