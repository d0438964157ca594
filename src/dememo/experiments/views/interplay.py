"""Views of the interplay study: Tables 10-17 (accuracy), Tables 18-25 (MIA) and Figures 5-8
(prob-MIA gap to RT), each beside the paper's values (Table 5: ``synergy``).

Entries carry the interplay labels (protection, level, cls, part, row, role): accuracy
is read from unlearn stages and from the Before model's accuracy audit, the MIA rates
from the mia audits' ``svc_rate`` metrics.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from matplotlib.figure import Figure

from dememo.audit.jobs import MIAOptions
from dememo.audit.mia import PAPER_SIGNALS, is_damaged
from dememo.experiments.stats import Estimate, seed_estimate
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.interplay import ROW_ORDER, InterplaySettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, png
from dememo.reference import PAPER_CITATION, interplay_tables, mia_tables, prob_gap_figures
from dememo.unlearn.settings import TABLE_NAMES

ACCURACY_TABLES = {"subset": {"ue-s": 10, "tue": 11, "pue": 12, "ops": 13},
                   "class": {"ue-s": 14, "tue": 15, "pue": 16, "ops": 17}}  # fmt: skip
MIA_TABLES = {"subset": {"ue-s": 18, "tue": 20, "pue": 22, "ops": 24},
              "class": {"ue-s": 19, "tue": 21, "pue": 23, "ops": 25}}  # fmt: skip
FIGURES = {"ue-s": 5, "ops": 6, "pue": 7, "tue": 8}
COLUMNS = {"subset": ("Du", "Duc", "Dc", "Dt"), "Du": ("Du", "Duc", "Dut", "Dtr"), "Dc": ("Dc", "Dct", "Dtr")}
SIGNAL_NAMES = {"correctness": "corr", "probability": "prob", "entropy": "entro"}
UNLEARNED = [row for row in ROW_ORDER if row not in ("RT", "Before", "clean")]
UP = "↑"
INTERVALS = (
    "Over several seeds a cell is the mean ±std [95% t-interval] and the seed count; for one "
    "model, [95% Wilson interval] and n, the evaluation samples."
)
CLASS_COUNT = {"cifar100": 100}  # classes of a dataset for the chance level of Dt (default 10)


def paper_name(protection: str) -> str:
    return TABLE_NAMES.get(protection, protection)


def forget_set(level: str, part: str, cls: int) -> str:
    """The paper tables' forget-set key: Du/Dc at subset level, 'class<k>' at class level."""
    return part if level == "subset" else f"class{cls}"


def number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


Key = tuple[str, int, str, str]  # (protection, cls, part, row)
Values = dict[Key, dict[str, list[float]]]  # per split, one value per seed


@dataclass(frozen=True)
class Results:
    """One level's results by (protection, cls, part, row): accuracy (%) and MIA rates, each
    the mean over the seeds run, with its estimate (interval, seeds or sample size) beside."""

    accuracy: dict[Key, dict[str, float]]
    mia: dict[Key, dict[str, float]]
    unseen: dict[Key, dict[str, float]] = dataclasses.field(default_factory=dict)
    accuracy_estimates: dict[Key, dict[str, Estimate | None]] = dataclasses.field(default_factory=dict)
    mia_estimates: dict[Key, dict[str, Estimate | None]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[Entry], level: str) -> Results:
        accuracy: Values = defaultdict(lambda: defaultdict(list))
        mia: Values = defaultdict(lambda: defaultdict(list))
        unseen: Values = defaultdict(lambda: defaultdict(list))
        sizes: dict[Key, dict[str, int]] = defaultdict(dict)
        for entry in entries:
            labels = entry.labels
            if labels.get("level") != level or entry.output is None or "cls" not in labels:
                continue
            key = (labels["protection"], labels["cls"], labels["part"], labels["row"])
            by_name = {"accuracy": accuracy} if labels["role"] in ("unlearn", "accuracy") else (
                {"svc_rate": mia, "svc_unseen_rate": unseen} if labels["role"] == "mia" else {})  # fmt: skip
            for (name, split), value in entry.output.metrics.items():
                if name in by_name:
                    by_name[name][key][split].append(value)
                elif name == "n" and labels["role"] in ("unlearn", "accuracy"):
                    sizes[key][split] = int(value)

        def means(values: Values) -> dict[Key, dict[str, float]]:
            return {k: {s: sum(v) / len(v) for s, v in d.items()} for k, d in values.items()}

        def mia_size(key: Key) -> int | None:  # the SVC's target set is the accuracy's Duc or Dc
            return sizes.get(key, {}).get("Duc" if key[2] == "Du" else "Dc")

        return cls(
            means(accuracy), means(mia), means(unseen),
            {k: {s: seed_estimate(v, sizes.get(k, {}).get(s), percent=True) for s, v in d.items()}
             for k, d in accuracy.items()},
            {k: {s: seed_estimate(v, mia_size(k)) for s, v in d.items()} for k, d in mia.items()},
        )  # fmt: skip


def _caption_run(view: ViewInput) -> str:
    settings: InterplaySettings = view.settings
    return f"{view.scale} scale; run: {settings.victim.describe()}"


def _rows(settings: InterplaySettings) -> list[str]:
    planned = {row for row, _, _ in settings.rows(settings.protections[0], "Du")}
    return [row for row in ROW_ORDER if row in planned] + ["Before"]


# --- Tables 10-17 -----------------------------------------------------------------------


def accuracy_cell(
    run: float | None, paper: tuple[float | None, bool] | None, arrow: bool, estimate: Estimate | None = None
) -> str:
    """'run↑ (paper↑)': this run's accuracy (with its interval and seeds or n when known), its
    up-arrow, the paper's value and arrow."""
    text = (estimate.describe() if estimate is not None and run is not None else number(run)) + (
        UP if arrow else "")  # fmt: skip
    if paper is not None:
        text += f" ({number(paper[0])}{UP if paper[1] else ''})"
    return text


def ft_arrow(level: str, part: str, row: str, value: float | None, before: float | None) -> bool:
    """FACTS 1.7: in the subset Du-forget block an FT row gets an up-arrow on Duc when
    Acc(Duc) after unlearning is above the Before model's."""
    return (level == "subset" and part == "Du" and row.startswith("FT_") and value is not None
            and before is not None and value > before)  # fmt: skip


def class_part(settings: InterplaySettings, cls: int) -> str:
    """Du for a protected class, Dc for a clean one (class level)."""
    return "Du" if cls in settings.scenario_settings().protected_classes else "Dc"


def accuracy_table(view: ViewInput, protection: str) -> TableView:
    settings: InterplaySettings = view.settings
    level = settings.level
    results = Results.of(view.entries, level)
    paper = interplay_tables()
    name = paper_name(protection)
    header = ["Forgetting set", "Method"] if level == "subset" else ["Method"]
    columns: list[tuple[int, str]] = []
    for cls in settings.classes:
        names = COLUMNS["subset"] if level == "subset" else COLUMNS[class_part(settings, cls)]
        header += [f"C{cls} {column}" for column in names]
        columns += [(cls, column) for column in names]
    unlearned = _rows(settings)[:-1]
    blocks = [("Du", unlearned), ("Dc", unlearned), ("-", ["Before"])] if level == "subset" else [
        ("class", _rows(settings))]  # fmt: skip
    rows = []
    for block, labels in blocks:
        for row in labels:
            cells = [block, row] if level == "subset" else [row]
            for cls, column in columns:
                part = {"-": "Du", "class": class_part(settings, cls)}.get(block, block)
                value = results.accuracy.get((protection, cls, part, row), {}).get(column)
                before = results.accuracy.get((protection, cls, part, "Before"), {}).get(column)
                where = block if level == "subset" else forget_set(level, part, cls)
                reference = paper.get((name, level, where, row, cls, column), (None, False))
                arrow = column == "Duc" and ft_arrow(level, part, row, value, before)
                estimate = results.accuracy_estimates.get((protection, cls, part, row), {}).get(column)
                cells.append(accuracy_cell(value, reference, arrow, estimate))
            rows.append(cells)
    table = ACCURACY_TABLES[level].get(protection)
    which = f"Table {table} ({name})" if table else f"{name} (no paper table)"
    caption = (f"{which}, {level} level: accuracy (%) of this run, the paper's value in parentheses "
               f"({_caption_run(view)}; paper: ResNet-18 on CIFAR-10, {PAPER_CITATION}). {INTERVALS} "
               + ("↑ marks an FT row of the Du-forget block whose Acc(Duc) is above the Before model's "
                  "(the paper's rule, FACTS 1.7)." if level == "subset" else ""))  # fmt: skip
    return TableView(f"{which}: {level}-level unlearning accuracy", header, rows, caption.strip())


@VIEWS.register("interplay-table")
def interplay_table(view: ViewInput) -> list[TableView]:
    """Tables 10-13 (subset) or 14-17 (class): one table per protection."""
    return [accuracy_table(view, protection) for protection in view.settings.protections]


# --- Tables 18-25 -----------------------------------------------------------------------


def utility(level: str) -> str:
    """The set whose accuracy tells a severely damaged model (FACTS 2.4): Dt or Dtr."""
    return "Dt" if level == "subset" else "Dtr"


def chance(settings: InterplaySettings) -> float:
    """Chance accuracy (%) of a guess among all classes, on Dt or Dtr alike (the model predicts
    every class; the paper's collapsed models show 10.00 on both)."""
    return 100 / CLASS_COUNT.get(settings.victim.dataset, 10)


def mia_cell(rate: float | None, before: float | None, rt: float | None, row: str, damaged: bool,
             estimate: Estimate | None = None) -> str:  # fmt: skip
    """A Tables 18-25 cell: '–' for a damaged model, the rate (with its interval and seeds or
    n when known) with ↑ when above Before and RT."""
    if damaged or rate is None:
        return "–"
    above = (
        row not in ("Before", "RT") and before is not None and rt is not None and rate > before and rate > rt
    )
    return (estimate.describe(4) if estimate is not None else f"{rate:.4f}") + (UP if above else "")


def mia_part(settings: InterplaySettings, cls: int) -> str:
    """The forget set whose models the MIA tables show: Du (subset level), Du or Dc (class level)."""
    return "Du" if settings.level == "subset" else class_part(settings, cls)


def damaged(results: Results, settings: InterplaySettings, protection: str, cls: int, row: str) -> bool:
    """An unlearned model omitted from Tables 18-25 ('–'): Dt / Dtr accuracy below 1.5 x chance."""
    accuracy = results.accuracy.get((protection, cls, mia_part(settings, cls), row), {}).get(
        utility(settings.level)
    )
    return row not in ("Before", "RT") and accuracy is not None and is_damaged(accuracy, chance(settings))


def mia_table(view: ViewInput, protection: str) -> TableView:
    settings: InterplaySettings = view.settings
    level = settings.level
    results = Results.of(view.entries, level)
    paper = mia_tables()
    name = paper_name(protection)
    header = ["Method"] + [f"C{cls} {SIGNAL_NAMES[s]}" for cls in settings.classes for s in PAPER_SIGNALS]
    rows = []
    for row in _rows(settings):
        cells = [row]
        for cls in settings.classes:
            part = mia_part(settings, cls)
            rates = results.mia.get((protection, cls, part, row), {})
            unseen = results.unseen.get((protection, cls, part, row), {})
            omitted = damaged(results, settings, protection, cls, row)
            for signal in PAPER_SIGNALS:
                before = results.mia.get((protection, cls, part, "Before"), {}).get(signal)
                rt = results.mia.get((protection, cls, part, "RT"), {}).get(signal)
                estimate = results.mia_estimates.get((protection, cls, part, row), {}).get(signal)
                text = mia_cell(rates.get(signal), before, rt, row, omitted, estimate)
                if text != "–" and unseen.get(signal) is not None:
                    text += f" [unseen {unseen[signal]:.4f}]"
                value, arrow = paper.get((name, level, row, cls, signal), (None, False))
                cells.append(f"{text} ({number(value, 4)}{UP if arrow else ''})")
        rows.append(cells)
    table = MIA_TABLES[level].get(protection)
    which = f"Table {table} ({name})" if table else f"{name} (no paper table)"
    target = (
        "Duc of the forgotten class (models of the Du-forget block)"
        if level == "subset"
        else ("Duc (protected classes) or Dc (clean classes) of the forgotten class")
    )
    shadow = MIAOptions.model_validate(settings.mia or {}).describe_shadow()
    caption = (f"{which}, {level} level: SVC membership-inference member rate on {target}, signals "
               f"correctness/probability/entropy ({INTERVALS}); 'unseen': the same SVC's member rate "
               f"on unseen test "
               f"images of the class (held out of its fit: the rate of a non-member); the paper's value "
               f"in parentheses ({_caption_run(view)}). SVC shadow data: {shadow} (as-trained: the retain "
               f"set with the pixels the model trained on, protected where it was, as the official "
               f"Unlearn-Sparse code). "
               f"↑: above both Before and RT. –: a severely damaged model (its {utility(level)} accuracy "
               f"below 1.5 x chance, dememo's threshold: the paper gives none) or no result.")  # fmt: skip
    return TableView(f"{which}: {level}-level MIA", header, rows, caption)


@VIEWS.register("mia-table")
def mia_table_view(view: ViewInput) -> list[TableView]:
    """Tables 18/20/22/24 (subset) or 19/21/23/25 (class): one table per protection."""
    return [mia_table(view, protection) for protection in view.settings.protections]


# --- Figures 5-8 ------------------------------------------------------------------------


def prob_gaps(
    results: Results, settings: InterplaySettings, protection: str
) -> dict[str, list[float | None]]:
    """Per unlearned row: prob-MIA(row) - prob-MIA(RT) per class (None where damaged or missing)."""
    gaps: dict[str, list[float | None]] = {}
    for row in [r for r in _rows(settings) if r in UNLEARNED]:
        values: list[float | None] = []
        for cls in settings.classes:
            part = mia_part(settings, cls)
            rate = results.mia.get((protection, cls, part, row), {}).get("probability")
            rt = results.mia.get((protection, cls, part, "RT"), {}).get("probability")
            omit = rate is None or rt is None or damaged(results, settings, protection, cls, row)
            values.append(None if omit else rate - rt)
        gaps[row] = values
    return gaps


@VIEWS.register("mia-gap")
def mia_gap(view: ViewInput) -> FigureView:
    """Figures 5-8: per protection, prob(U) - prob(RT) per class and method (bars), and the
    paper's derived values for the same cells (markers)."""
    settings: InterplaySettings = view.settings
    results = Results.of(view.entries, settings.level)
    paper = prob_gap_figures()
    figure = Figure(figsize=(1.5 + 0.9 * len(settings.classes) * 2, 3.2 * len(settings.protections)))
    for index, protection in enumerate(settings.protections):
        axes = figure.add_subplot(len(settings.protections), 1, index + 1)
        gaps = prob_gaps(results, settings, protection)
        width = 0.8 / max(len(gaps), 1)
        colors = {}
        for offset, (row, values) in enumerate(gaps.items()):
            positions = [i + (offset - (len(gaps) - 1) / 2) * width for i in range(len(settings.classes))]
            bars = axes.bar(
                positions, [v if v is not None else 0.0 for v in values], width, label=f"{row} (run)"
            )
            colors[row] = bars.patches[0].get_facecolor() if bars.patches else None
            reference = [
                paper.get((paper_name(protection), settings.level, cls, row)) for cls in settings.classes
            ]
            points = [(p, v) for p, v in zip(positions, reference, strict=True) if v is not None]
            if points:
                axes.scatter(*zip(*points, strict=True), marker="D", s=18, color=colors[row],
                             edgecolors="black", linewidths=0.6, zorder=3)  # fmt: skip
        axes.axhline(0, color="gray", linewidth=0.8)
        axes.set_xticks(range(len(settings.classes)), [f"class {c}" for c in settings.classes])
        axes.set_ylabel("prob MIA gap to RT")
        figure_number = FIGURES.get(protection)
        side = "left" if settings.level == "class" else "right"
        where = f" (Figure {figure_number}, {side})" if figure_number else ""
        axes.set_title(f"{paper_name(protection)}, {settings.level} level{where}", fontsize=9)
        axes.legend(fontsize=7, ncol=3)
    caption = (
        "Bars: this run's prob(unlearned) - prob(RT), the probability-signal MIA member rate on the "
        "forgotten class's clean counterparts (FACTS 2.5; positive = residual leakage). Black-edged "
        "diamonds: the same quantity from the paper's Tables 18-25 (derived: the figures are images). "
        f"Missing bars: damaged models or no result ({_caption_run(view)})."
    )
    title = f"Figures 5-8 ({settings.level} level): prob-MIA gap to RT"
    return FigureView(title, png(figure), caption)
