"""Views of the llm study: ``table4`` (per task Clean, RegText, RT, GA, NPO, FT with the
paper's up-arrow rule, the paper's Table 4 beside) and ``figure12`` (recovery curves).

Cells are means over seeds. Beside each: the accuracy on the retained tasks (R) and the share
of "yes" answers, since a model that answers one way scores 50% on a balanced set whatever it
learned. A fine-tuned model (Clean, RegText) whose accuracy lies within chance's 95% Wilson
interval, or that gives one answer to more than ``ONE_ANSWER`` of the prompts, did not learn
(``learning_problem``): its cells are marked ✗ and the caption names it; the findings view
calls the LM findings inconclusive then.

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
from dememo.experiments.stats import wilson
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.llm import LLMSettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png
from dememo.experiments.views.recovery import (
    Curve,
    legend_unreached,
    mark_unreached,
    reach_caption,
    unreached_lines,
)
from dememo.reference import PAPER_CITATION, table4_llm

ARROWED = ("ga", "npo", "ft")  # the paper marks these when above the RegText column
FINETUNED = ("clean", "regtext")
PAPER_COLUMN = {"clean": "clean", "regtext": "regtext", "rt": "retrain", "ga": "ga", "npo": "npo", "ft": "ft"}
TITLES = {"clean": "Clean", "regtext": "RegText", "rt": "RT"}
SCORING_NAMES = {
    "choice": "yes-vs-no choice (the answer whose first token ranks higher)",
    "generate": "normalised exact match of the generated answer (the official RegText rule)",
}
CHANCE = 0.5  # balanced yes/no test sets
ONE_ANSWER = 0.8


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def seed_of(entry: Entry) -> int:
    return int(entry.labels.get("seed", 0))


def matching(entries: list[Entry], **labels: object) -> list[Entry]:
    """Done entries with these labels, one per seed."""
    return [
        e for e in entries if e.output is not None and all(e.labels.get(k) == v for k, v in labels.items())
    ]


def learning_problem(accuracy: float, yes_share: float, n: int) -> str | None:
    """Why a fine-tuned model did not learn its task, or None: its accuracy (a fraction) is within
    chance's 95% Wilson interval on its n test answers, or one answer takes > ONE_ANSWER of them."""
    low, high = wilson(round(accuracy * n), n)
    if low <= CHANCE <= high:
        return f"near chance ({100 * accuracy:.1f}% [{100 * low:.1f}, {100 * high:.1f}] on {n})"
    share, answer = max((yes_share, "yes"), (1 - yes_share, "no"))
    if share > ONE_ANSWER:
        return f"answers '{answer}' to {100 * share:.0f}% of prompts"
    return None


def not_learned(entries: list[Entry]) -> dict[tuple[int, str, str], str]:
    """(seed, task, column) -> reason, for every fine-tuned model that did not learn its task."""
    found = {}
    for entry in entries:
        task, column = entry.labels.get("task"), entry.labels.get("column")
        if entry.output is None or column not in FINETUNED or entry.labels.get("role") != "model":
            continue
        values = [entry.metric(name, task) for name in ("accuracy", "yes_share", "test_size")]
        if None not in values and (reason := learning_problem(values[0], values[1], int(values[2]))):
            found[(seed_of(entry), task, column)] = reason
    return found


def cell_values(
    entries: list[Entry], task: str, column: str, tasks: tuple[str, ...]
) -> dict[str, list[float]]:
    """Per seed: accuracy on ``task``, on the retained tasks and the "yes" share (percent)."""
    values: dict[str, list[float]] = {"accuracy": [], "retained": [], "yes": []}
    for entry in matching(entries, task=task, column=column, role="model"):
        if column in FINETUNED:
            found = (
                entry.metric("accuracy", task),
                mean([v for t in tasks if t != task and (v := entry.metric("accuracy", t)) is not None]),
                entry.metric("yes_share", task),
            )
        else:
            found = (
                entry.metric("accuracy", "forget"),
                entry.metric("accuracy", "retain"),
                entry.metric("yes_share", "forget"),
            )
        for name, value in zip(values, found, strict=True):
            if value is not None:
                values[name].append(100 * value)
    return values


def task_accuracy(entries: list[Entry], task: str, column: str) -> float | None:
    """This run's test accuracy (%) on ``task`` in a Table 4 column, mean over seeds (None when not done)."""
    return mean(cell_values(entries, task, column, (task,))["accuracy"])


def up_arrows(row: dict[str, float | None]) -> set[str]:
    """The paper's rule: an unlearning method above the pre-unlearning (RegText) accuracy."""
    before = row.get("regtext")
    return {m for m in ARROWED if before is not None and row.get(m) is not None and row[m] > before}


def cell(values: dict[str, list[float]], arrow: bool, failed: bool) -> str:
    accuracy = mean(values["accuracy"])
    if accuracy is None:
        return "–"
    spread = values["accuracy"]
    text = percent(accuracy)
    if len(spread) > 1:
        text += f" ±{(sum((v - accuracy) ** 2 for v in spread) / (len(spread) - 1)) ** 0.5:.1f}"
    text += " ↑" if arrow else ""
    extra = [f"R {mean(values['retained']):.1f}"] if values["retained"] else []
    extra += [f"yes {mean(values['yes']):.0f}%"] if values["yes"] else []
    return text + (f" ({', '.join(extra)})" if extra else "") + (" ✗" if failed else "")


def inserted_words(entries: list[Entry]) -> str:
    found = matching(entries, column="regtext", role="model")
    stats = [[e.metric("inserted_words", k) for k in ("mean", "min", "max")] for e in found]
    stats = [s for s in stats if None not in s]
    if not stats:
        return ""
    return (f" RegText inserted {stats[0][0]:.1f} words per training text on average (min {stats[0][1]:g}, "
            f"max {stats[0][2]:g}).")  # fmt: skip


@VIEWS.register("table4")
def table4_view(view: ViewInput) -> TableView:
    settings: LLMSettings = view.settings
    columns = ["clean", "regtext", *settings.methods()]
    header = ["task"] + [TITLES.get(c, c.upper()) for c in columns]
    failures = not_learned(view.entries)
    rows, paper = [], table4_llm()
    for index, task in enumerate(settings.tasks):
        values = {c: cell_values(view.entries, task, c, settings.tasks) for c in columns}
        arrows = up_arrows({c: mean(v["accuracy"]) for c, v in values.items()})
        failed = {c for (_, t, c) in failures if t == task}
        rows.append([task] + [cell(values[c], c in arrows, c in failed) for c in columns])
        if index < len(paper):
            ref = paper[index]
            cells = [percent(ref.get(PAPER_COLUMN.get(c, "")))
                     + (" ↑" if c.upper() in ref["up_arrow"] else "") for c in columns]  # fmt: skip
            rows.append([f"paper {ref['task']}"] + cells)
    seeds = len(settings.seed_list())
    caption = (f"Accuracy (%) on each task's clean held-out examples ({view.scale} scale, {settings.model}, "
               f"scoring: {SCORING_NAMES.get(settings.scoring, settings.scoring)}), "
               f"{'mean ± std over ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'}; in brackets the "
               "accuracy on the retained tasks (R) and the share of 'yes' answers. Clean and RegText are the "
               "models fine-tuned on clean and on RegText-protected data; RT, GA, NPO and FT forgot the task "
               "from the RegText model. ↑: above the RegText column (the paper's rule). ✗: the fine-tuned "
               f"model did not learn the task (accuracy within chance's 95% interval, or one answer to more "
               f"than {100 * ONE_ANSWER:.0f}% of prompts).{inserted_words(view.entries)} 'paper TaskN' "
               f"rows: {PAPER_CITATION}, Table 4 (Mistral-7B-v0.3 on NI Polarity tasks it does not "
               "name).")  # fmt: skip
    if failures:
        caption += " WARNING " + "; WARNING ".join(
            f"{column} on {task} (seed {seed}) did not learn: {reason}"
            for (seed, task, column), reason in sorted(failures.items())
        )
    return TableView("Table 4: accuracy of unlearned LMs trained on RegText", header, rows, caption)


def recovery_curve(entries: list[Entry], task: str, method: str, etas: tuple[float, ...]) -> Curve | None:
    """The mean recovery curve over seeds (accuracy in %); a point's radius counts as reached when
    every seed reached it. eta 0 comes from the unlearned model when the curve lacks it."""
    found = matching(entries, task=task, column=method, role="recover")
    if not found:
        return None
    points = []
    for eta in etas:
        accuracy = [v for e in found if (v := e.metric("task_accuracy", eta_split(eta))) is not None]
        if accuracy:
            distance = [e.metric("distance", eta_split(eta)) or 0.0 for e in found]
            reached = all(e.metric("radius_reached", eta_split(eta)) != 0 for e in found)
            points.append((eta, 100 * mean(accuracy), mean(distance), reached))
    start = task_accuracy(entries, task, method)
    if 0 not in etas and start is not None:
        points.insert(0, (0.0, start, 0.0, True))
    if not points:
        return None
    etas_, accuracy, distance, reached = (list(x) for x in zip(*points, strict=True))
    return Curve(etas_, accuracy, distance, reached=reached)


@VIEWS.register("figure12")
def figure12_view(view: ViewInput) -> FigureView:
    settings: LLMSettings = view.settings
    tasks = settings.tasks
    figure = Figure(figsize=(3.2 * len(tasks), 3.0))
    curves: dict[str, Curve | None] = {}
    for index, task in enumerate(tasks):
        axes = figure.add_subplot(1, len(tasks), index + 1)
        hollow = False
        for method in settings.attacked:
            curve = curves[f"{method.upper()} on {task}"] = recovery_curve(
                view.entries, task, method, settings.etas
            )
            if curve is not None:
                line = axes.plot(curve.etas, curve.accuracy, marker="o", ms=3, label=method.upper())[0]
                hollow |= mark_unreached(axes, curve, curve.accuracy, line.get_color())
        regtext = task_accuracy(view.entries, task, "regtext")
        if regtext is not None:
            axes.axhline(regtext, linestyle="--", color="gray", label="RegText")
        axes.set_title(task, fontsize=9)
        axes.set_xlabel("eta / ||theta||" if settings.relative_eta else "eta (l2)")
        axes.set_ylim(-2, 102)
        if hollow:
            legend_unreached(axes)
        if index == 0:
            axes.set_ylabel("forget-task accuracy (%)")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    radius = "relative to the trained weights' norm" if settings.relative_eta else "absolute"
    attack = "SGD" if settings.recovery.optimizer == "sgd" else "AdamW"
    caption = (f"Recovery attack on each unlearned model ({view.scale} scale, mean over seeds): accuracy on "
               f"the forgotten task after {attack} on {settings.attack_per_task} of its clean training "
               f"examples, projected onto the l2 {settings.projection} of radius eta ({radius}) around the "
               "unlearned weights. The paper's Figure 12 gives no eta values.")  # fmt: skip
    caption += reach_caption(unreached_lines(curves))
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
