"""Published numbers for reproduction checks.

``table3.csv``: test accuracy (%) of classifiers trained on unlearnability-protected
training sets, from the SoK paper "Unlearnability and Unlearning for Model
Dememorization" (2026), Table 3 (training recipes of its Table 6, with augmentation).

Shipped for the interplay and recovery specs (parsed from the paper's text, arXiv
2605.11592v1; each file's header says how): ``tables10-25.csv`` (Tables 10-25 in
long form, "-" where the paper omits a value), ``fig5-8-prob-gap-derived.csv``
(prob-MIA of each unlearned model minus RT's, derived from Tables 18-25, which
Figures 5-8 plot) and ``table4-llm.csv`` (Table 4). ``PAPER_CITATION`` names the paper
in reports and captions.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files

PAPER_CITATION = 'SoK: "Unlearnability and Unlearning for Model Dememorization" (arXiv 2605.11592v1, 2026)'


@cache
def table3() -> dict[str, dict[str, float]]:
    """{column (e.g. 'cifar10_resnet18'): {perturbation (e.g. 'ue-s', 'clean'): accuracy %}}."""
    lines = [line for line in files(__package__).joinpath("table3.csv").read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    rows = list(csv.DictReader(lines))
    columns = [c for c in rows[0] if c != "perturbation"]
    return {col: {row["perturbation"]: float(row[col]) for row in rows} for col in columns}


def paper_accuracy(dataset: str, model: str, perturbation: str) -> float | None:
    """The paper's Table 3 accuracy (%) for this cell, or None when it has none."""
    return table3().get(f"{dataset}_{model}", {}).get(perturbation)


# --- Tables 10-17 (unlearning interplay, accuracy %) ---------------------------------


@cache
def interplay_tables() -> dict[tuple[str, str, str, str, int, str], tuple[float | None, bool]]:
    """{(protection, level, forget_set, method, class, column): (value %, up-arrow)} from the
    paper's Tables 10-17 (the accuracy rows of ``tables10-25.csv``). forget_set is 'Du'/'Dc' (subset level),
    '-' for the subset Before row, and 'class<k>' at class level; value None where the
    paper prints '-'."""
    return {key: value for key, value in _tables10_25().items() if not key[-1].startswith("mia_")}


@cache
def mia_tables() -> dict[tuple[str, str, str, int, str], tuple[float | None, bool]]:
    """{(protection, level, method, class, signal): (SVC member rate, up-arrow)} from the
    paper's Tables 18-25; signal is 'correctness', 'probability' or 'entropy' (the
    columns corr, prob, entro); value None where the paper prints '-' (a damaged model)."""
    signals = {"mia_corr": "correctness", "mia_prob": "probability", "mia_entro": "entropy"}
    return {(protection, level, method, cls, signals[column]): value
            for (protection, level, _, method, cls, column), value in _tables10_25().items()
            if column in signals}  # fmt: skip


@cache
def prob_gap_figures() -> dict[tuple[str, str, int, str], float | None]:
    """{(protection, level, class, method): prob-MIA(method) - prob-MIA(RT)}, the quantity
    Figures 5-8 plot, derived from Tables 18-25 (``fig5-8-prob-gap-derived.csv``)."""
    text = files(__package__).joinpath("fig5-8-prob-gap-derived.csv").read_text().splitlines()
    rows = csv.DictReader([line for line in text if line and not line.startswith("#")])
    fixed = ("figure", "protection", "level", "class")
    return {(r["protection"], r["level"], int(r["class"]), method): float(value) if value else None
            for r in rows for method, value in r.items() if method not in fixed}  # fmt: skip


@cache
def _tables10_25() -> dict[tuple[str, str, str, str, int, str], tuple[float | None, bool]]:
    text = files(__package__).joinpath("tables10-25.csv").read_text().splitlines()
    rows = csv.DictReader([line for line in text if line and not line.startswith("#")])
    return {
        (r["protection"], r["level"], r["forget_set"], r["method"], int(r["cls"]), r["column"]): (
            None if r["value"] == "-" else float(r["value"]),
            r["arrow"] == "1",
        )
        for r in rows
    }


def paper_interplay(
    protection: str, level: str, forget_set: str, method: str, cls: int, column: str
) -> float | None:
    """The paper's accuracy (%) for one cell of Tables 10-17, or None."""
    return interplay_tables().get((protection, level, forget_set, method, cls, column), (None, False))[0]


# --- Table 4 (the language-model case study, accuracy %) -----------------------------


@cache
def table4_llm() -> list[dict[str, object]]:
    """The paper's Table 4 rows in order (Task1-3): {'task', 'clean', 'regtext', 'retrain',
    'ga', 'npo', 'ft': accuracy %, 'up_arrow': the columns printed with an up-arrow}."""
    text = files(__package__).joinpath("table4-llm.csv").read_text().splitlines()
    rows = csv.DictReader([line for line in text if line and not line.startswith("#")])
    return [{**{k: (v if k == "task" else float(v)) for k, v in r.items() if k != "up_arrow"},
             "up_arrow": [c for c in r["up_arrow"].split(",") if c]} for r in rows]  # fmt: skip
