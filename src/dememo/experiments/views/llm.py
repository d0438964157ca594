"""Views of the llm study: ``table4`` (per task Clean, RegText, RT, GA, NPO, FT with the
paper's up-arrow rule, the paper's Table 4 beside) and ``figure12`` (recovery curves).

The paper's tasks are NI Polarity tasks it does not name (FACTS 5); this run's i-th task
is set beside the paper's Task i only to compare patterns, not values.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from dememo.atomic import atomic_write_bytes, atomic_write_text
from dememo.experiments.reproduce import stored_entries
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import Spec
from dememo.experiments.stages.lm_recover import eta_split
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.llm import LLMSettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png
from dememo.reference import PAPER_CITATION, table4_llm

ARROWED = ("ga", "npo", "ft")  # the paper marks these when above the RegText column
PAPER_COLUMN = {"clean": "clean", "regtext": "regtext", "rt": "retrain", "ga": "ga", "npo": "npo", "ft": "ft"}
TITLES = {"clean": "Clean", "regtext": "RegText", "rt": "RT"}


def find(entries: list[Entry], **labels: object) -> Entry | None:
    return next((e for e in entries if all(e.labels.get(k) == v for k, v in labels.items())), None)


def task_accuracy(entries: list[Entry], task: str, column: str) -> float | None:
    """This run's test accuracy (%) on ``task`` in a Table 4 column, or None when not done."""
    entry = find(entries, task=task, column=column, role="model")
    if entry is None:
        return None
    value = entry.metric("accuracy", task if column in ("clean", "regtext") else "forget")
    return None if value is None else 100 * value


def up_arrows(row: dict[str, float | None]) -> set[str]:
    """The paper's rule: an unlearning method above the pre-unlearning (RegText) accuracy."""
    before = row.get("regtext")
    return {m for m in ARROWED if before is not None and row.get(m) is not None and row[m] > before}


@VIEWS.register("table4")
def table4_view(view: ViewInput) -> TableView:
    settings: LLMSettings = view.settings
    columns = ["clean", "regtext", *settings.methods()]
    header = ["task"] + [TITLES.get(c, c.upper()) for c in columns]
    rows, paper = [], table4_llm()
    for index, task in enumerate(settings.tasks):
        values = {c: task_accuracy(view.entries, task, c) for c in columns}
        arrows = up_arrows(values)
        rows.append([task] + [percent(values[c]) + (" ↑" if c in arrows else "") for c in columns])
        if index < len(paper):
            ref = paper[index]
            cells = [percent(ref.get(PAPER_COLUMN.get(c, "")))
                     + (" ↑" if c.upper() in ref["up_arrow"] else "") for c in columns]  # fmt: skip
            rows.append([f"paper {ref['task']}"] + cells)
    caption = (f"Exact-match accuracy (%) on each task's clean held-out examples ({view.scale} scale, "
               f"{settings.model}): Clean and RegText are the models fine-tuned on clean and on "
               "RegText-protected data; RT, GA, NPO and FT forgot the task from the RegText model. "
               "↑: above the RegText column (the paper's rule). 'paper TaskN' rows: "
               f"{PAPER_CITATION}, Table 4 (Mistral-7B-v0.3 on NI Polarity tasks it does not name)."
               )  # fmt: skip
    return TableView("Table 4: accuracy of unlearned LMs trained on RegText", header, rows, caption)


def recovery_points(entries: list[Entry], task: str, method: str, etas: tuple[float, ...]) -> list[tuple]:
    entry = find(entries, task=task, column=method, role="recover")
    if entry is None or entry.output is None:
        return []
    points = [(eta, entry.metric("task_accuracy", eta_split(eta))) for eta in etas]
    points = [(eta, 100 * acc) for eta, acc in points if acc is not None]
    start = task_accuracy(entries, task, method)  # eta = 0: the unlearned model as it is
    if 0 not in etas and start is not None:
        points.insert(0, (0.0, start))
    return points


@VIEWS.register("figure12")
def figure12_view(view: ViewInput) -> FigureView:
    settings: LLMSettings = view.settings
    tasks = settings.tasks
    figure = Figure(figsize=(3.2 * len(tasks), 3.0))
    for index, task in enumerate(tasks):
        axes = figure.add_subplot(1, len(tasks), index + 1)
        for method in settings.attacked:
            points = recovery_points(view.entries, task, method, settings.etas)
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", ms=3, label=method.upper())
        regtext = task_accuracy(view.entries, task, "regtext")
        if regtext is not None:
            axes.axhline(regtext, linestyle="--", color="gray", label="RegText")
        axes.set_title(task, fontsize=9)
        axes.set_xlabel("eta / ||theta||" if settings.relative_eta else "eta")
        axes.set_ylim(-2, 102)
        if index == 0:
            axes.set_ylabel("forget-task accuracy (%)")
            if axes.get_legend_handles_labels()[0]:
                axes.legend(fontsize=7)
    relative = "" if settings.relative_eta else ": here absolute"
    caption = (f"Recovery attack on each unlearned model ({view.scale} scale): accuracy on the forgotten "
               f"task after fine-tuning on {settings.attack_per_task} of its clean training examples inside "
               "an l2 ball of radius eta around the unlearned weights (eta relative to the trained weights' "
               f"norm{relative}). The paper's Figure 12 gives no eta values.")  # fmt: skip
    return FigureView("Figure 12: recovery attack on unlearned LMs", png(figure), caption)


def table_markdown(view: TableView) -> str:
    lines = ["| " + " | ".join(view.header) + " |", "|" + "---|" * len(view.header)]
    lines += ["| " + " | ".join(row) + " |" for row in view.rows]
    return "\n".join(lines) + "\n"


def export_llm(results: Path, spec: Spec, scale: str) -> tuple[str, Path]:
    """Table 4 as Markdown (``<results>/table4.md``) and Figure 12 (``figure12.png``) of a
    recorded reproduction; returns the Markdown and the PNG's path."""
    db = ResultsDB.in_directory(results, create=False)
    try:
        view = ViewInput(spec, scale, spec.settings(scale), stored_entries(db, spec.name, scale))
    finally:
        db.close()
    markdown = table_markdown(table4_view(view))
    atomic_write_text(results / "table4.md", markdown)
    png = results / "figure12.png"
    atomic_write_bytes(png, figure12_view(view).png)
    return markdown, png
