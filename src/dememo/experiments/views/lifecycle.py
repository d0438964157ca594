"""Views of the lifecycle demo (spec ``lifecycle``): one table that follows a forgetting
target from protection to audit, and its recovery curves.

Over several seeds every number is the mean over the seeds with its 95% t-interval
``[low, high]`` (``dememo.experiments.stats``); curves are the seeds' mean, with the
t-interval as error bars, and a radius counts as reached only where every seed reached it."""

from __future__ import annotations

from matplotlib.figure import Figure

from dememo.experiments.stats import seed_estimate
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.interplay import ROW_ORDER, InterplaySettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png
from dememo.experiments.views.recovery import (
    curve_style,
    legend_unreached,
    mark_unreached,
    mean_curve,
    reach_caption,
    seed_values,
    unreached_lines,
)


def _by_role(entries: list[Entry], protection: str, cls: int) -> dict[tuple[str, str], list[Entry]]:
    """(row, role) -> the finished entries of one forgetting target, one per seed; the clean
    reference joins every target."""
    found: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        labels = entry.labels
        target = labels.get("protection") == protection and labels.get("cls") == cls
        if entry.output is not None and (labels.get("row") == "clean" or target):
            found.setdefault((labels.get("row", ""), labels["role"]), []).append(entry)
    return found


def _values(entries: list[Entry], name: str, split: str, scale: float = 1.0) -> list[float]:
    """The metric of each seed's entry that has it (times ``scale``)."""
    return [scale * v for e in entries if (v := e.metric(name, split)) is not None]


def _cell(values: list[float]) -> str:
    """One seed: the value; several: the mean and its 95% t-interval across seeds."""
    estimate = seed_estimate(values)
    if estimate is None:
        return "–"
    if estimate.low is None or estimate.high is None:
        return percent(estimate.value)
    return f"{estimate.value:.1f} [{estimate.low:.1f}, {estimate.high:.1f}]"


def _seeds(view: ViewInput) -> int:
    return len({e.labels.get("seed", 0) for e in view.entries}) or 1


def _seed_caption(view: ViewInput) -> str:
    count = _seeds(view)
    if count == 1:
        return " One seed: no interval across seeds."
    return f" {count} seeds: each cell is the mean over the seeds with its 95% t-interval [low, high]."


def _eta_key(values: dict[tuple[str, str], float], name: str) -> str | None:
    """The largest eta a metric was measured at (split 'eta=<v>')."""
    etas = [split for metric, split in values if metric == name]
    return max(etas, key=lambda s: float(s.split("=")[1]), default=None)


def _targets(view: ViewInput) -> list[tuple[str, int]]:
    settings: InterplaySettings = view.settings
    return [(p, c) for p in settings.protections for c in settings.classes]


@VIEWS.register("lifecycle-summary")
def lifecycle_summary(view: ViewInput) -> TableView:
    """Per protection and model: accuracy on the target's sets, MIA member rates, recovered
    accuracy at the largest radius, Theorem 1 bounds at the largest radius."""
    rows, recovered_at, certified_at, unreached = [], set(), set(), []
    for protection, cls in _targets(view):
        found = _by_role(view.entries, protection, cls)
        for row in ROW_ORDER:
            accuracy = found.get((row, "accuracy" if row == "Before" else "unlearn"), [])
            mia, recover, certify = (found.get((row, role), []) for role in ("mia", "recover", "certify"))
            if not any((accuracy, mia, recover, certify)):
                continue
            names = ("Du", "Duc", "Dut", "Dtr")
            if not any(_values(accuracy, "accuracy", name) for name in names[:3]):
                names = ("Dc", "Dc", "Dct", "Dtr")
            cells = [protection, row, *[_cell(_values(accuracy, "accuracy", name)) for name in names]]
            cells += [_cell(_values(mia, "svc_rate", s, 100)) for s in ("correctness", "probability")]
            text, split = _recovered(recover)
            cells += text
            recovered_at.add(split)
            unreached += [f"{protection} {line}" for line in unreached_lines({row: mean_curve(recover)})]
            text, split = _certified(certify)
            cells.append(text)
            certified_at.add(split)
            cells.append(_cell(_values(accuracy, "unlearn_seconds", "")))
            rows.append(cells)
    header = ["protection", "model", "forget", "clean cp.", "class test", "observ.", "MIA corr", "MIA prob",
              f"recovered {_at(recovered_at)}", "distance", f"certified {_at(certified_at)}",
              "unlearn s"]  # fmt: skip
    caption = (
        (
            "forget / clean cp. / class test / observ.: accuracy (%) on the forgotten class's training "
            "images as trained on, their clean counterparts, its test images and the observation "
            "classes' test images (Tables 14-17's Du, Duc, Dut, Dtr; Dc, Dc, Dct for a clean class). "
            "MIA: share of the clean counterparts the paper's SVC attack calls member (%, Tables "
            "18-25's corr and prob). recovered: class test accuracy (%) after the recovery attack at "
            "the largest radius, other classes' accuracy in parentheses (a collapse check); distance: "
            "the weight shift ||theta - theta_0|| the attack reached / eta. certified: "
            "Theorem 1 bounds [lower, upper] on the class test accuracy (%) at the largest radius. A "
            "deep forgetting has forget-set accuracy, MIA rate and recovered accuracy near RT's, the "
            "latter only where the attack reached its radius."
        )
        + _seed_caption(view)
        + reach_caption(unreached)
    )
    return TableView("Lifecycle: one target from protection to audit", header, rows, caption)


def _at(splits: set[str | None]) -> str:
    """'at eta=0.8' for the radius the column shows ('at eta=...' listing several if they differ)."""
    shown = sorted(s for s in splits if s)
    return f"at {', '.join(shown)}" if shown else ""


def _recovered(entries: list[Entry]) -> tuple[list[str], str | None]:
    """['recovered (other classes)', 'distance / eta'] at the largest radius over the seeds
    ('*' where a seed did not reach it), and that radius's split."""
    curve = mean_curve(entries)
    if curve is None:
        return ["–", "–"], None
    index = len(curve.etas) - 1
    eta = curve.etas[index]
    mark = "" if curve.reached[index] else "*"
    value = _cell(seed_values(entries, eta)) + mark
    control = curve.control[index] if curve.control else None
    distance = curve.distance[index]
    reach = "–" if distance is None else f"{distance:.2g} / {eta:g}{mark}"
    return [f"{value} ({percent(100 * control)})" if control is not None else value, reach], f"eta={eta:g}"


def _certified(entries: list[Entry]) -> tuple[str, str | None]:
    """'[lower, upper]' at the largest certified radius (the seeds' mean bounds), and that
    radius's split."""
    if not entries:
        return "–", None
    splits = {s for e in entries for m, s in e.output.metrics if m.startswith("certified_")}  # type: ignore[union-attr]
    if not splits:
        return "abstained", None
    split = max(splits, key=lambda s: float(s.split("=")[1]))
    show = []
    for bound in ("certified_lower", "certified_upper"):
        values = _values(entries, bound, split, 100)
        show.append(percent(sum(values) / len(values)) if values else "abstain")
    return f"[{show[0]}, {show[1]}]", split


@VIEWS.register("lifecycle-recovery-table")
def lifecycle_recovery_table(view: ViewInput) -> TableView:
    """Recovered class test accuracy at every eta with the distance the attack reached there."""
    curves, rows = {}, []
    for protection, cls in _targets(view):
        found = _by_role(view.entries, protection, cls)
        for row in ROW_ORDER:
            entries = found.get((row, "recover"), [])
            if (curve := mean_curve(entries)) is not None:
                curves[(protection, row)] = (curve, entries)
    etas = sorted({e for c, _ in curves.values() for e in c.etas})
    unreached = []
    for (protection, row), (curve, entries) in curves.items():
        cells = [protection, row]
        for eta in etas:
            if eta not in curve.etas:
                cells.append("–")
                continue
            i = curve.etas.index(eta)
            mark = "" if curve.reached[i] else "*"
            distance = "?" if curve.distance[i] is None else f"{curve.distance[i]:.2g}"
            cells.append(f"{_cell(seed_values(entries, eta))}{mark} (d {distance}/{eta:g})")
        rows.append(cells)
        unreached += [f"{protection} {line}" for line in unreached_lines({row: curve})]
    caption = (
        "Class test accuracy (%) after the recovery attack at each radius eta; in parentheses the "
        "weight shift ||theta - theta_0|| the attack reached / eta (mean over seeds)."
        + _seed_caption(view)
        + reach_caption(unreached)
    )
    return TableView(
        "Lifecycle: recovery at every radius",
        ["protection", "model", *[f"eta {e:g}" for e in etas]],
        rows,
        caption,
    )


@VIEWS.register("lifecycle-recovery")
def lifecycle_recovery(view: ViewInput) -> FigureView:
    """Recovered class test accuracy against the radius eta, one panel per protection."""
    targets = _targets(view)
    figure = Figure(figsize=(5.2 * len(targets), 3.6))
    unreached = []
    for index, (protection, cls) in enumerate(targets):
        axes = figure.add_subplot(1, len(targets), index + 1)
        found = _by_role(view.entries, protection, cls)
        hollow = False
        for order, row in enumerate(ROW_ORDER):
            entries = found.get((row, "recover"), [])
            curve = mean_curve(entries)
            if curve is None:
                continue
            values = [100 * a for a in curve.accuracy]
            line = axes.plot(curve.etas, values, label=row, **curve_style(order))[0]
            spread = [seed_estimate(seed_values(entries, e)) for e in curve.etas]
            if all(s is not None and s.low is not None for s in spread):
                axes.fill_between(curve.etas, [s.low for s in spread], [s.high for s in spread],  # type: ignore[union-attr]
                                  color=line.get_color(), alpha=0.15, lw=0)  # fmt: skip
            hollow |= mark_unreached(axes, curve, values, line.get_color())
            unreached += [f"{protection} {text}" for text in unreached_lines({row: curve})]
            control = [(e, 100 * c) for e, c in zip(curve.etas, curve.control, strict=False) if c is not None]
            if control:
                axes.plot(*zip(*control, strict=True), ls=":", color=line.get_color())
        axes.plot([], [], ls=":", color="gray", label="other classes")
        if hollow:
            legend_unreached(axes)
        axes.set_title(f"{protection}: class {cls} forgotten", fontsize=9)
        axes.set_xlabel("eta (l2 bound on the weight shift)")
        axes.set_ylabel("class test accuracy after recovery (%)")
        axes.set_ylim(0, 100)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    caption = (
        (
            "Solid: accuracy on the forgotten class's test images after the recovery attack (projected SGD "
            "on 10% of that class's clean training images); dotted: the other classes' accuracy; hollow: "
            "radius not reached; shaded: the 95% t-interval across seeds."
        )
        + _seed_caption(view)
        + reach_caption(unreached)
    )
    return FigureView("Lifecycle: recovery curves", png(figure), caption)
