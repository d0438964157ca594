"""Views of the protect-eval study: Table 3, Figure 4 (augmentation) and Figure 19 (poisoning ratio)."""

from __future__ import annotations

from matplotlib.figure import Figure

from dememo.experiments.stats import describe
from dememo.experiments.studies.protect_eval import ProtectEvalSettings, ProtectionResult, protection_rows
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png
from dememo.reference import PAPER_CITATION

TABLE3_ORDER = ("ue-c", "pue", "ops", "ue-s", "tue", "tap")  # the paper's row order, then clean


def _rows(
    view: ViewInput, victim: int, augment: bool, ratio: float, seed: int | None = None
) -> dict[str, ProtectionResult]:
    """One seed's rows (default: the first seed run; Figures 4 and 19 show that seed)."""
    settings: ProtectEvalSettings = view.settings
    seed = _seeds(view)[0] if seed is None else seed
    rows = protection_rows(view.entries, victim=victim, augment=augment, ratio=ratio,
                           paper_column=settings.victims[victim].paper_column, seed=seed)  # fmt: skip
    return {row.method: row for row in rows}


def _seeds(view: ViewInput) -> list[int | None]:
    return sorted({e.labels["seed"] for e in view.entries if "seed" in e.labels}) or [None]


def _estimate(per_seed: list[dict[str, ProtectionResult]], method: str, field: str) -> str:
    """Test accuracy (%) or drop (points) of ``method`` over the seeds run: mean ±std [t-interval]
    and the seed count, or for one seed the accuracy's Wilson interval and n."""
    rows = [rows[method] for rows in per_seed if method in rows]
    if field == "accuracy":
        return describe([100 * r.test_accuracy for r in rows], rows[0].test_size if rows else None)
    return describe([r.drop_points for r in rows], None)


def _method_order(settings: ProtectEvalSettings) -> list[str]:
    paper = [m for m in TABLE3_ORDER if m in settings.methods]
    return paper + [m for m in settings.methods if m not in paper] + ["clean"]


@VIEWS.register("table3")
def table3_view(view: ViewInput) -> TableView:
    """Table 3's layout: perturbations as rows; per victim the paper's value and this run's."""
    settings: ProtectEvalSettings = view.settings
    augment, ratio = settings.augment[0], max(settings.ratios)
    header = ["perturbation"]
    by_victim = []
    for index, victim in enumerate(settings.victims):
        header += [f"paper {victim.paper_column or '(none)'}", "paper drop", f"run: {victim.describe()}",
                   "run drop"]  # fmt: skip
        by_victim.append([_rows(view, index, augment, ratio, seed) for seed in _seeds(view)])
    rows = []
    for method in _method_order(settings):
        cells = [method]
        for per_seed in by_victim:
            paper = next((r[method].paper_accuracy for r in per_seed if method in r), None)
            clean = next((r["clean"].paper_accuracy for r in per_seed if "clean" in r), None)
            drop = None if paper is None or clean is None else clean - paper
            cells += [percent(paper), percent(drop), _estimate(per_seed, method, "accuracy"),
                      _estimate(per_seed, method, "drop")]  # fmt: skip
        rows.append(cells)
    # what the victims' recipes do, not only the flag: a recipe without augmentation stays without
    trained = {"on" if v.recipe_for(augment).augment.active else "off" for v in settings.victims}
    caption = (f"Clean test accuracy (%) of victims trained on protected data ({view.scale} scale; "
               f"training augmentation {'/'.join(sorted(trained))}, poisoning ratio {ratio}), and the drop "
               f"against the clean victim (points). Over several seeds a cell is the mean ±std "
               f"[95% t-interval] and the seed count; for one seed, [95% Wilson interval] and n. Paper "
               f"values: {PAPER_CITATION}, Table 3, for the paper's own dataset and model.")  # fmt: skip
    return TableView("Table 3: unlearnability efficacy", header, rows, caption)


@VIEWS.register("augmentation-table")
def augmentation_table(view: ViewInput) -> TableView:
    """Figure 4's numbers: accuracy with and without augmentation, per victim."""
    settings: ProtectEvalSettings = view.settings
    ratio = max(settings.ratios)
    header = ["perturbation"]
    columns = []
    for index, victim in enumerate(settings.victims):
        for augment in settings.augment:
            header.append(f"{victim.describe()}, augmentation {'on' if augment else 'off'}")
            columns.append(_rows(view, index, augment, ratio))
    rows = [[m] + [percent(100 * c[m].test_accuracy if m in c else None) for c in columns]
            for m in _method_order(settings)]  # fmt: skip
    caption = (
        "Test accuracy (%) with and without training augmentation. The paper shows Figure 4 "
        "as an image only (ViT-Tiny, dataset not named), so there are no paper numbers to set beside."
    )
    return TableView("Figure 4: augmentation", header, rows, caption)


@VIEWS.register("augmentation-bars")
def augmentation_bars(view: ViewInput) -> FigureView:
    settings: ProtectEvalSettings = view.settings
    ratio = max(settings.ratios)
    methods = _method_order(settings)
    figure = Figure(figsize=(1.2 + 0.9 * len(methods), 3.2 * len(settings.victims)))
    for index, victim in enumerate(settings.victims):
        axes = figure.add_subplot(len(settings.victims), 1, index + 1)
        width = 0.8 / len(settings.augment)
        for offset, augment in enumerate(settings.augment):
            rows = _rows(view, index, augment, ratio)
            values = [100 * rows[m].test_accuracy if m in rows else 0.0 for m in methods]
            positions = [i + (offset - (len(settings.augment) - 1) / 2) * width for i in range(len(methods))]
            axes.bar(positions, values, width, label=f"augmentation {'on' if augment else 'off'}")
        axes.set_xticks(range(len(methods)), methods)
        axes.set_ylabel("test accuracy (%)")
        axes.set_ylim(0, 100)
        axes.set_title(victim.describe(), fontsize=9)
        axes.legend(fontsize=8)
    return FigureView("Figure 4: accuracy with and without augmentation", png(figure))


@VIEWS.register("ratio-table")
def ratio_table(view: ViewInput) -> TableView:
    """Figure 19's numbers: accuracy per poisoning ratio (first victim, first augmentation)."""
    settings: ProtectEvalSettings = view.settings
    augment = settings.augment[0]
    per_ratio = {ratio: _rows(view, 0, augment, ratio) for ratio in settings.ratios}
    header = ["perturbation"] + [f"ratio {r:g}" for r in settings.ratios]
    rows = [[m] + [percent(100 * per_ratio[r][m].test_accuracy if m in per_ratio[r] else None)
                   for r in settings.ratios] for m in settings.methods]  # fmt: skip
    clean = next(iter(per_ratio.values())).get("clean")
    caption = (
        f"Test accuracy (%) of {settings.victims[0].describe()} by share of protected training "
        f"data; clean-trained: {percent(100 * clean.test_accuracy if clean else None)}. The paper "
        "shows Figure 19 as an image only (ImageNet class-wise noise, ratios not given in the text)."
    )
    return TableView("Figure 19: poisoning ratio", header, rows, caption)


@VIEWS.register("ratio-curve")
def ratio_curve(view: ViewInput) -> FigureView:
    settings: ProtectEvalSettings = view.settings
    augment = settings.augment[0]
    per_ratio = {ratio: _rows(view, 0, augment, ratio) for ratio in sorted(settings.ratios)}
    figure = Figure(figsize=(5, 3.4))
    axes = figure.add_subplot()
    for method in settings.methods:
        points = [(r, 100 * rows[method].test_accuracy) for r, rows in per_ratio.items() if method in rows]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=method)
    clean = next(iter(per_ratio.values())).get("clean")
    if clean is not None:
        axes.axhline(100 * clean.test_accuracy, linestyle="--", color="gray", label="clean")
    axes.set_xlabel("poisoning ratio")
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(0, 100)
    axes.legend(fontsize=8)
    return FigureView("Figure 19: accuracy by poisoning ratio", png(figure), settings.victims[0].describe())
