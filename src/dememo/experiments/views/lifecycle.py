"""Views of the lifecycle demo (spec ``lifecycle``): one table that follows a forgetting
target from protection to audit, and its recovery curves."""

from __future__ import annotations

from matplotlib.figure import Figure

from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.interplay import ROW_ORDER, InterplaySettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png
from dememo.experiments.views.recovery import (
    curve_of,
    legend_unreached,
    mark_unreached,
    reach_caption,
    unreached_lines,
)


def _by_role(entries: list[Entry], protection: str, cls: int) -> dict[tuple[str, str], Entry]:
    """(row, role) -> entry for one forgetting target; the clean reference joins every target."""
    found = {}
    for entry in entries:
        labels = entry.labels
        if labels.get("row") == "clean" or (
            labels.get("protection") == protection and labels.get("cls") == cls
        ):
            found[(labels.get("row", ""), labels["role"])] = entry
    return found


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
            accuracy = found.get((row, "accuracy" if row == "Before" else "unlearn"))
            mia, recover, certify = (found.get((row, role)) for role in ("mia", "recover", "certify"))
            if not any((accuracy, mia, recover, certify)):
                continue
            acc = accuracy.output.metrics if accuracy and accuracy.output else {}
            sets = [percent(acc.get(("accuracy", name))) for name in ("Du", "Duc", "Dut", "Dtr")]
            if not any(("accuracy", name) in acc for name in ("Du", "Duc", "Dut")):
                sets[:3] = [percent(acc.get(("accuracy", name))) for name in ("Dc", "Dc", "Dct")]
            cells = [protection, f"{row}", *sets]
            mia_metrics = mia.output.metrics if mia and mia.output else {}
            cells += [
                percent(_scaled(mia_metrics.get(("svc_rate", s)))) for s in ("correctness", "probability")
            ]
            text, split = _recovered(recover)
            cells += text
            recovered_at.add(split)
            curve = curve_of(recover) if recover is not None else None
            unreached += [f"{protection} {line}" for line in unreached_lines({row: curve})]
            text, split = _certified(certify)
            cells.append(text)
            certified_at.add(split)
            seconds = acc.get(("unlearn_seconds", ""))
            cells.append("–" if seconds is None else f"{seconds:.1f}")
            rows.append(cells)
    header = ["protection", "model", "forget", "clean cp.", "class test", "observ.", "MIA corr", "MIA prob",
              f"recovered {_at(recovered_at)}", "distance", f"certified {_at(certified_at)}",
              "unlearn s"]  # fmt: skip
    caption = (
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
    ) + reach_caption(unreached)
    return TableView("Lifecycle: one target from protection to audit", header, rows, caption)


def _scaled(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _at(splits: set[str | None]) -> str:
    """'at eta=0.8' for the radius the column shows ('at eta=...' listing several if they differ)."""
    shown = sorted(s for s in splits if s)
    return f"at {', '.join(shown)}" if shown else ""


def _recovered(entry: Entry | None) -> tuple[list[str], str | None]:
    """['recovered (other classes)', 'distance / eta'] at the largest radius ('*' where the
    radius was not reached), and that radius's split."""
    curve = curve_of(entry) if entry is not None else None
    if entry is None or entry.output is None or curve is None:
        return ["–", "–"], None
    metrics = entry.output.metrics
    split = _eta_key(metrics, "recovered_accuracy")
    index = curve.etas.index(float(split.split("=")[1]))
    mark = "" if curve.reached[index] else "*"
    value = percent(100 * curve.accuracy[index]) + mark
    control = metrics.get(("control_accuracy", split))
    distance = curve.distance[index]
    reach = "–" if distance is None else f"{distance:.2g} / {curve.etas[index]:g}{mark}"
    return [f"{value} ({percent(100 * control)})" if control is not None else value, reach], split


def _certified(entry: Entry | None) -> tuple[str, str | None]:
    """'[lower, upper]' at the largest certified radius, and that radius's split."""
    if entry is None or entry.output is None:
        return "–", None
    metrics = entry.output.metrics
    etas = [s for m, s in metrics if m.startswith("certified_")]
    if not etas:
        return "abstained", None
    split = max(etas, key=lambda s: float(s.split("=")[1]))
    low, up = metrics.get(("certified_lower", split)), metrics.get(("certified_upper", split))
    show = [percent(100 * v) if v is not None else "abstain" for v in (low, up)]
    return f"[{show[0]}, {show[1]}]", split


@VIEWS.register("lifecycle-recovery-table")
def lifecycle_recovery_table(view: ViewInput) -> TableView:
    """Recovered class test accuracy at every eta with the distance the attack reached there."""
    curves, rows = {}, []
    for protection, cls in _targets(view):
        found = _by_role(view.entries, protection, cls)
        for row in ROW_ORDER:
            entry = found.get((row, "recover"))
            curve = curve_of(entry) if entry is not None else None
            if curve is not None:
                curves[(protection, row)] = curve
    etas = sorted({e for c in curves.values() for e in c.etas})
    unreached = []
    for (protection, row), curve in curves.items():
        cells = [protection, row]
        for eta in etas:
            if eta not in curve.etas:
                cells.append("–")
                continue
            i = curve.etas.index(eta)
            mark = "" if curve.reached[i] else "*"
            distance = "?" if curve.distance[i] is None else f"{curve.distance[i]:.2g}"
            cells.append(f"{percent(100 * curve.accuracy[i])}{mark} (d {distance}/{eta:g})")
        rows.append(cells)
        unreached += [f"{protection} {line}" for line in unreached_lines({row: curve})]
    caption = (
        "Class test accuracy (%) after the recovery attack at each radius eta; in parentheses the "
        "weight shift ||theta - theta_0|| the attack reached / eta." + reach_caption(unreached)
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
        for row in ROW_ORDER:
            entry = found.get((row, "recover"))
            curve = curve_of(entry) if entry is not None else None
            if curve is None:
                continue
            values = [100 * a for a in curve.accuracy]
            line = axes.plot(curve.etas, values, marker="o", label=row)[0]
            hollow |= mark_unreached(axes, curve, values, line.get_color())
            unreached += [f"{protection} {text}" for text in unreached_lines({row: curve})]
            control = [(e, 100 * c) for e, c in zip(curve.etas, curve.control, strict=False) if c is not None]
            if control:
                axes.plot(*zip(*control, strict=True), ls=":", color=line.get_color())
        if hollow:
            legend_unreached(axes)
        axes.set_title(f"{protection}: class {cls} forgotten", fontsize=9)
        axes.set_xlabel("eta (l2 bound on the weight shift)")
        axes.set_ylabel("class test accuracy after recovery (%)")
        axes.set_ylim(0, 100)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    caption = (
        "Solid: accuracy on the forgotten class's test images after the recovery attack (projected SGD "
        "on 10% of that class's clean training images); dotted: the other classes' accuracy; hollow: "
        "radius not reached."
    ) + reach_caption(unreached)
    return FigureView("Lifecycle: recovery curves", png(figure), caption)
