"""Views of recovery and certified-depth audits: Figure 9 (recovery of protected models),
Figures 2, 10-11 and 13-18 (recovery of unlearned models), and the certified-bounds study.

Audit metrics are read per ``eta=<value>`` split (``stages/audit.py``). A class-level
attack can collapse a model into always predicting the target class, which a
target-class accuracy rewards; where the audit measured the other classes' accuracy
(``control_accuracy``) the views draw it dotted and flag a collapse: other-class
accuracy below ``COLLAPSE_SHARE`` of its value before the attack (eta 0).

Every point also carries the distance the attack reached and whether the radius was
reached (metric ``radius_reached``; ``dememo.audit.recovery.radius_reached``): where it was
not, the attack's budget, not eta, bounded it. Tables mark such cells "*" with a footnote,
figures draw them hollow ("radius not reached"), and captions list them in a warning line
instead of reading depth from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from dememo.audit.jobs import CertifyOptions
from dememo.audit.recovery import RADIUS_TOLERANCE, radius_reached
from dememo.experiments.stats import seed_estimate
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.interplay import ROW_ORDER, InterplaySettings
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, percent, png

COLLAPSE_SHARE = 0.5


@dataclass
class Curve:
    """One model's recovery curve: per eta the recovered accuracy, distance and control accuracy."""

    etas: list[float]
    accuracy: list[float]
    distance: list[float]
    control: list[float | None] = field(default_factory=list)
    reached: list[bool] = field(default_factory=list)
    seed_collapses: list[float] = field(default_factory=list)  # etas where some seed collapsed

    def __post_init__(self) -> None:
        if not self.reached:
            self.reached = [d is None or radius_reached(d, e)
                            for e, d in zip(self.etas, self.distance, strict=True)]  # fmt: skip

    def unreached(self) -> list[float]:
        """Etas > 0 whose radius the attack did not reach (its budget ran out first)."""
        return [e for e, r in zip(self.etas, self.reached, strict=True) if e > 0 and not r]

    def collapsed_at(self) -> list[float]:
        """Etas where the other classes' accuracy fell below COLLAPSE_SHARE of its eta-0 value
        (for a mean over seeds: where the mean did, or any one seed did)."""
        if not self.control or self.control[0] is None or 0.0 not in self.etas:
            return sorted(set(self.seed_collapses))
        base = self.control[self.etas.index(0.0)]
        fell = {
            e
            for e, c in zip(self.etas, self.control, strict=True)
            if c is not None and c < COLLAPSE_SHARE * base
        }
        return sorted(fell | set(self.seed_collapses))


def eta_of(split: str) -> float | None:
    return float(split[4:]) if split.startswith("eta=") else None


def curve_of(entry: Entry) -> Curve | None:
    """The audited model's curve from a recover audit's metrics (None until it is done)."""
    if entry.output is None:
        return None
    etas = sorted({e for (name, split) in entry.output.metrics
                   if name == "recovered_accuracy" and (e := eta_of(split)) is not None})  # fmt: skip
    if not etas:
        return None

    def series(name: str) -> list[float | None]:
        return [entry.metric(name, f"eta={e:g}") for e in etas]

    control = series("control_accuracy")
    distance = series("distance")
    reached = [bool(r) if r is not None else (d is None or radius_reached(d, e))  # older runs: by distance
               for e, r, d in zip(etas, series("radius_reached"), distance, strict=True)]  # fmt: skip
    return Curve(etas, series("recovered_accuracy"), distance,  # type: ignore[arg-type]
                 control if any(c is not None for c in control) else [], reached)  # fmt: skip


def mean_curve(entries: list[Entry]) -> Curve | None:
    """The curves of one model over seeds averaged per eta (the etas every seed has); a radius
    counts as reached only where every seed reached it, and a collapse at an eta where any seed
    collapsed. None until some seed is done."""
    curves = [c for e in entries if (c := curve_of(e)) is not None]
    if not curves:
        return None
    etas = sorted(set.intersection(*(set(c.etas) for c in curves)))

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None

    def series(pick) -> list[float | None]:
        return [mean([pick(c)[c.etas.index(e)] if pick(c) else None for c in curves]) for e in etas]

    control = series(lambda c: c.control)
    collapses = sorted({e for c in curves for e in c.collapsed_at() if e in etas})
    return Curve(etas, series(lambda c: c.accuracy), series(lambda c: c.distance),  # type: ignore[arg-type]
                 control if any(v is not None for v in control) else [],
                 [all(c.reached[c.etas.index(e)] for c in curves) for e in etas], collapses)  # fmt: skip


def seed_values(entries: list[Entry], eta: float) -> list[float]:
    """Recovered accuracy (%) at ``eta`` of each seed's curve that has it."""
    curves = [c for e in entries if (c := curve_of(e)) is not None and eta in c.etas]
    return [100 * c.accuracy[c.etas.index(eta)] for c in curves]


def unreached_lines(curves: dict[str, Curve | None]) -> list[str]:
    """One warning line per curve whose radius was not reached at some eta > 0."""
    lines = []
    for name, curve in curves.items():
        if curve is None or not curve.unreached():
            continue
        points = ", ".join(f"eta {e:g} (distance {_distance(curve, e)})" for e in curve.unreached())
        lines.append(f"{name}: radius not reached at {points}")
    return lines


def _distance(curve: Curve, eta: float) -> str:
    d = curve.distance[curve.etas.index(eta)]
    return "?" if d is None else f"{d:.2g}"


def reach_caption(lines: list[str]) -> str:
    """The caption's radius sentence: all reached, or a warning line per unreached curve."""
    if not lines:
        return (" Every attack reached its radius (the projection engaged or the distance came within "
                f"{100 * RADIUS_TOLERANCE:g}% of eta).")  # fmt: skip
    return (
        " * radius not reached: the attack's budget (epochs, lr), not eta, bounded the weight shift, so "
        "these points say nothing about depth at that radius. WARNING " + "; WARNING ".join(lines) + "."
    )


MARKERS = "osD^vP*X"


def curve_style(order: int) -> dict[str, object]:
    """A marker of its own for the ``order``-th curve of a panel, larger for earlier curves, so
    that curves which coincide (e.g. RT and IF both at 0%) stay visible."""
    return {"marker": MARKERS[order % len(MARKERS)], "ms": max(3.0, 10.0 - 1.2 * order)}


def mark_unreached(axes, curve: Curve, values: list[float], color) -> bool:
    """Hollow markers on the points whose radius was not reached; True if any."""
    missed = [(e, v) for e, v, r in zip(curve.etas, values, curve.reached, strict=True) if not r]
    if missed:
        axes.plot(*zip(*missed, strict=True), "o", ms=7, mfc="white", color=color, zorder=3)
    return bool(missed)


def legend_unreached(axes) -> None:
    axes.plot([], [], "o", ms=7, mfc="white", color="gray", label="radius not reached")


def _matching(entries: list[Entry], role: str, **labels: object) -> list[Entry]:
    wanted = {"role": role, **labels}
    return [e for e in entries if all(e.labels.get(k) == v for k, v in wanted.items())]


def _cell(curve: Curve | None, eta: float, entries: list[Entry] = ()) -> str:  # type: ignore[assignment]
    """The (seeds' mean) accuracy at ``eta``, with its 95% t-interval over the seeds of
    ``entries`` when there are several, '*' where a seed did not reach the radius, the other
    classes' accuracy in parentheses and 'collapse' where it fell."""
    if curve is None or eta not in curve.etas:
        return "–"
    index = curve.etas.index(eta)
    estimate = seed_estimate(seed_values(list(entries), eta))
    spread = f" [{estimate.low:.2f}, {estimate.high:.2f}]" if estimate and estimate.low is not None else ""
    text = percent(100 * curve.accuracy[index]) + spread + ("" if curve.reached[index] else "*")
    if curve.control:
        text += f" ({percent(100 * curve.control[index]) if curve.control[index] is not None else '–'})"
        if eta in curve.collapsed_at():
            text += " collapse"
    return text


def seeds_caption(entries: list[Entry]) -> str:
    """How many seeds the curves average (the t-interval convention when several)."""
    count = len({e.labels.get("seed", 0) for e in entries})
    if count <= 1:
        return " One seed: no interval across seeds."
    return f" {count} seeds: each value is the seeds' mean, [95% t-interval] in tables."


def _all_etas(curves: list[Curve | None]) -> list[float]:
    return sorted({e for c in curves if c is not None for e in c.etas})


# -- Figure 9: recovery of models trained on protected data (recovery-protected study) --


def _protected_unreached(view: ViewInput, per_victim: list[dict[str, Curve | None]]) -> list[str]:
    victims = view.settings.victims
    return [f"{victim.describe()} {line}" for victim, curves in zip(victims, per_victim, strict=True)
            for line in unreached_lines(curves)]  # fmt: skip


def _protected_entries(view: ViewInput, victim: int) -> dict[str, list[Entry]]:
    """Method -> the finished recover audits of one victim, one per seed."""
    settings = view.settings
    augment, ratio = settings.augment[0], max(settings.ratios)
    found = {}
    for method in [*settings.methods, "clean"]:
        matches = _matching(view.entries, "recover", victim=victim, method=method, augment=augment,
                            ratio=0.0 if method == "clean" else ratio)  # fmt: skip
        found[method] = [e for e in matches if e.output is not None]
    return found


def _protected_curves(view: ViewInput, victim: int) -> dict[str, Curve | None]:
    """Method -> the seeds' mean curve of one victim."""
    return {method: mean_curve(found) for method, found in _protected_entries(view, victim).items()}


@VIEWS.register("recovery-table")
def recovery_table(view: ViewInput) -> TableView:
    """Figure 9's numbers: clean test accuracy (%) after the attack, per victim and eta."""
    settings = view.settings
    per_victim = [_protected_curves(view, index) for index in range(len(settings.victims))]
    header, columns = ["perturbation"], []
    for index, victim in enumerate(settings.victims):
        for eta in _all_etas(list(per_victim[index].values())):
            header.append(f"{victim.describe()}, eta {eta:g}")
            columns.append((index, eta))
    entries = [_protected_entries(view, index) for index in range(len(settings.victims))]
    rows = [[method] + [_cell(per_victim[i][method], eta, entries[i][method]) for i, eta in columns]
            for method in [*settings.methods, "clean"]]  # fmt: skip
    attack = settings.recover
    caption = (
        f"Clean test accuracy (%) after the recovery attack ({view.scale} scale): projected SGD "
        f"within an l2 ball of radius eta around the trained weights, on "
        f"{100 * attack.get('attack_fraction', 0.1):g}% of the clean training split, evaluated on the "
        "whole test split. Eta 0 is the victim as trained. The paper shows Figure 9 as an image only."
    ) + seeds_caption(_matching(view.entries, "recover"))
    caption += reach_caption(_protected_unreached(view, per_victim))
    return TableView("Figure 9: recovery of models trained on protected data", header, rows, caption)


@VIEWS.register("recovery-curves")
def recovery_curves(view: ViewInput) -> FigureView:
    """Figure 9: accuracy vs eta, one curve per perturbation, one panel per victim."""
    settings = view.settings
    count = len(settings.victims)
    figure = Figure(figsize=(5.2 * count, 3.8), layout="constrained")
    per_victim = [_protected_curves(view, index) for index in range(count)]
    for index, victim in enumerate(settings.victims):
        axes = figure.add_subplot(1, count, index + 1)
        hollow = False
        for order, (method, curve) in enumerate(per_victim[index].items()):
            if curve is not None:
                style = {"ls": "--", "color": "black"} if method == "clean" else {}
                values = [100 * a for a in curve.accuracy]
                line = axes.plot(curve.etas, values, label=method, **curve_style(order), **style)[0]
                hollow |= mark_unreached(axes, curve, values, line.get_color())
        if hollow:
            legend_unreached(axes)
        _decorate(axes, victim.describe(), "test accuracy (%)")
    caption = "Test accuracy after projected-SGD recovery within an l2 ball of radius eta"
    caption += "; hollow: radius not reached."
    caption += reach_caption(_protected_unreached(view, per_victim))
    return FigureView("Figure 9: recovery of models trained on protected data", png(figure), caption)


def _decorate(axes, title: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("eta (l2 bound on the weight shift)")
    axes.set_ylabel(ylabel)
    axes.set_ylim(-2, 102)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # a target with no finished audit yet has no curves
        axes.legend(fontsize=7)


# -- Figures 2, 10-11, 13-18: recovery of unlearned models (interplay study) --


def _targets(settings: InterplaySettings) -> list[tuple[str, int]]:
    classes = settings.recover_classes if settings.recover_classes is not None else settings.classes
    return [(protection, cls) for protection in settings.protections for cls in classes]


def _class_entries(view: ViewInput, protection: str, cls: int) -> dict[str, list[Entry]]:
    """Row -> the finished recover audits of one forgetting target (one per seed), in the
    paper's row order."""
    found: dict[str, list[Entry]] = {}
    for entry in _matching(view.entries, "recover", protection=protection, cls=cls):
        if entry.output is not None:
            found.setdefault(entry.labels["row"], []).append(entry)
    return {row: found[row] for row in sorted(found, key=_row_rank)}


def _class_curves(view: ViewInput, protection: str, cls: int) -> dict[str, Curve]:
    """Row -> the seeds' mean curve of one forgetting target, in the paper's row order."""
    curves = {row: mean_curve(found) for row, found in _class_entries(view, protection, cls).items()}
    return {row: curve for row, curve in curves.items() if curve is not None}


def _row_rank(row: str) -> int:
    return ROW_ORDER.index(row) if row in ROW_ORDER else len(ROW_ORDER)


def _kind(settings: InterplaySettings, cls: int) -> str:
    return "protected" if cls in settings.scenario_settings().protected_classes else "clean"


def _class_unreached(targets: dict[tuple[str, int], dict[str, Curve]]) -> list[str]:
    return [f"{protection} class {cls} {line}" for (protection, cls), curves in targets.items()
            for line in unreached_lines(curves)]  # fmt: skip


def _collapses(targets: dict[tuple[str, int], dict[str, Curve]]) -> list[str]:
    flagged = []
    for (protection, cls), curves in targets.items():
        for row, curve in curves.items():
            etas = curve.collapsed_at()
            if etas:
                flagged.append(f"{protection} class {cls} {row} at eta {', '.join(f'{e:g}' for e in etas)}")
    return flagged


def _collapse_caption(flagged: list[str]) -> str:
    share = f"{100 * COLLAPSE_SHARE:g}%"
    if not flagged:
        return (
            f" No collapse: other-class accuracy stayed above {share} of its eta-0 value wherever measured, "
            "on every seed."
        )
    return (f" Collapse (other-class accuracy below {share} of its eta-0 value, on the mean or on at least "
            f"one seed: the attack taught the "
            f"model to answer the target class, so its target-class accuracy is not recovered knowledge): "
            f"{'; '.join(flagged)}.")  # fmt: skip


@VIEWS.register("recovery-class-table")
def recovery_class_table(view: ViewInput) -> TableView:
    """Target-class test accuracy (%) after the attack, per forgetting target, row and eta."""
    settings: InterplaySettings = view.settings
    targets = {t: _class_curves(view, *t) for t in _targets(settings)}
    etas = _all_etas([c for curves in targets.values() for c in curves.values()])
    header = ["protection", "class", "row"] + [f"eta {e:g}" for e in etas]
    rows = []
    for (protection, cls), curves in targets.items():
        entries = _class_entries(view, protection, cls)
        for row, curve in curves.items():
            cells = [_cell(curve, e, entries[row]) for e in etas]
            rows.append([protection, f"{cls} ({_kind(settings, cls)})", row, *cells])
    caption = (
        f"Test accuracy (%) on the forgotten class after the recovery attack ({view.scale} scale; "
        "in parentheses: accuracy on the other classes' test images). The attack fine-tunes on 10% of "
        "the class's clean training images within an l2 ball of radius eta; eta 0 is the model as "
        "unlearned. The paper shows these figures as images only."
        + seeds_caption(_matching(view.entries, "recover"))
        + _collapse_caption(_collapses(targets))
        + reach_caption(_class_unreached(targets))
    )
    return TableView("Recovery of unlearned models: target-class accuracy", header, rows, caption)


@VIEWS.register("recovery-class")
def recovery_class(view: ViewInput) -> FigureView:
    """Figures 2, 10, 13-15: per forgetting target a panel of recovery curves, one per row
    (unlearning method, Before, clean); other-class accuracy dotted, collapses marked x."""
    settings: InterplaySettings = view.settings
    targets = {t: _class_curves(view, *t) for t in _targets(settings)}
    figure = Figure(figsize=(6.0, 3.6 * max(1, len(targets))), layout="constrained")
    for index, ((protection, cls), curves) in enumerate(targets.items()):
        axes = figure.add_subplot(max(1, len(targets)), 1, index + 1)
        hollow = False
        for order, (row, curve) in enumerate(curves.items()):
            style = {"ls": "--", "color": "black"} if row == "clean" else {}
            values = [100 * a for a in curve.accuracy]
            line = axes.plot(curve.etas, values, label=row, **curve_style(order), **style)[0]
            hollow |= mark_unreached(axes, curve, values, line.get_color())
            if curve.control:
                points = [
                    (e, 100 * c) for e, c in zip(curve.etas, curve.control, strict=True) if c is not None
                ]
                axes.plot(*zip(*points, strict=True), ls=":", color=line.get_color(), lw=1)
            collapsed = curve.collapsed_at()
            axes.plot(collapsed, [100 * curve.accuracy[curve.etas.index(e)] for e in collapsed], "x",
                      color="red", ms=8)  # fmt: skip
        if hollow:
            legend_unreached(axes)
        _decorate(
            axes, f"{protection}: class {cls} ({_kind(settings, cls)}) forgotten", "class test accuracy (%)"
        )
    flagged = _collapses(targets)
    caption = ("Solid: accuracy on the forgotten class's test images after the attack; dotted: the other "
               "classes' test images; red x: collapse; hollow: radius not reached."
               + _collapse_caption(flagged) + reach_caption(_class_unreached(targets)))  # fmt: skip
    return FigureView(f"{view.spec.paper.artefact}: recovery of unlearned models", png(figure), caption)


def _lighten(color: str, amount: float = 0.55) -> tuple[float, float, float]:
    r, g, b = to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


@VIEWS.register("recovery-ft-classes")
def recovery_ft_classes(view: ViewInput) -> FigureView:
    """Figures 11, 16-18: FT-unlearned models, one curve per forgotten class; lighter =
    protected class, darker = clean class; one panel per protection."""
    settings: InterplaySettings = view.settings
    protections = settings.protections
    figure = Figure(figsize=(5.5, 3.6 * len(protections)), layout="constrained")
    flagged, unreached = [], []
    for index, protection in enumerate(protections):
        axes = figure.add_subplot(len(protections), 1, index + 1)
        hollow = False
        for number, (_, cls) in enumerate(t for t in _targets(settings) if t[0] == protection):
            curves = _class_curves(view, protection, cls)
            row = next((r for r in curves if r.startswith("FT")), None)
            if row is None:
                continue
            curve = curves[row]
            base = f"C{number % 10}"
            protected = _kind(settings, cls) == "protected"
            color = _lighten(base) if protected else to_rgb(base)
            values = [100 * a for a in curve.accuracy]
            axes.plot(curve.etas, values, marker="o", ms=3, color=color,
                      label=f"class {cls} ({'protected' if protected else 'clean'}, {row})")  # fmt: skip
            hollow |= mark_unreached(axes, curve, values, color)
            flagged += [f"{protection} class {cls} {row} at eta {e:g}" for e in curve.collapsed_at()]
            unreached += [f"{protection} class {cls} {line}" for line in unreached_lines({row: curve})]
        if hollow:
            legend_unreached(axes)
        _decorate(axes, f"{protection}: FT-unlearned models", "class test accuracy (%)")
    caption = ("Accuracy on each forgotten class's test images after the recovery attack on its "
               "FT-unlearned model; lighter curves: protected classes, darker: clean classes.")  # fmt: skip
    caption += _collapse_caption(flagged) + reach_caption(unreached)
    return FigureView(f"{view.spec.paper.artefact}: FT-unlearned models by class", png(figure), caption)


# -- Certified depth (section 7, a dememo extension) --


def _bounds(entry: Entry, side: str, etas: list[float]) -> list[float | None]:
    return [entry.metric(f"certified_{side}", f"eta={e:g}") for e in etas]


def _certify_entries(view: ViewInput) -> list[Entry]:
    entries = _matching(view.entries, "certify")
    return sorted(
        entries, key=lambda e: (e.labels["protection"], e.labels["cls"], _row_rank(e.labels["row"]))
    )


def _certify_options(view: ViewInput) -> CertifyOptions:
    return CertifyOptions.model_validate(view.settings.certify or {})


def _certify_etas(view: ViewInput) -> list[float]:
    return sorted(float(e) for e in _certify_options(view).etas)


def _bound_text(value: float | None, done: bool) -> str:
    if not done:
        return "–"
    return "abstain" if value is None else percent(100 * value)


@VIEWS.register("certified-bounds")
def certified_bounds(view: ViewInput) -> TableView:
    """Theorem 1 bounds (%) on the forgotten class's test accuracy, per row and eta."""
    etas = _certify_etas(view)
    header = ["protection", "class", "row", "at theta_hat"] + [f"eta {e:g}: lower / upper" for e in etas]
    runs = view.settings.certify_runs
    if runs:
        header.append(f"Theorem 2 (eta {max(etas):g})")
    rows = []
    for entry in _certify_entries(view):
        done = entry.output is not None
        lower, upper = _bounds(entry, "lower", etas), _bounds(entry, "upper", etas)
        cells = [
            f"{_bound_text(lo, done)} / {_bound_text(up, done)}" for lo, up in zip(lower, upper, strict=True)
        ]
        labels = entry.labels
        rows.append([labels["protection"], str(labels["cls"]), labels["row"],
                     _bound_text(entry.metric("clean_value"), done) if done else "–", *cells])  # fmt: skip
        if runs:
            transfer = entry.metric("transfer_probability")
            rows[-1].append(percent(None if transfer is None else 100 * transfer))
    options = _certify_options(view)
    caption = (
        f"Theorem 1 ({view.scale} scale): for any theta* ~ N(theta_hat + v, sigma^2 I) with ||v|| <= eta, "
        f"the forgotten class's test accuracy is <= upper with probability >= q = {options.q:g} and >= lower "
        f"with probability >= 1 - q = {1 - options.q:g} (FACTS 4.1), both estimated from "
        f"N = {options.samples} Monte-Carlo weight samples (sigma {options.sigma:g}) with "
        f"confidence 1 - alpha = {1 - options.alpha:g}. 'abstain': N is too small for that side at "
        "that eta. A lower upper bound means deeper forgetting. A dememo extension: the paper "
        "reports no numbers."
    )
    if runs:
        caption += (
            f" Theorem 2: the probability (%, lower confidence end) that the bounds at radius 2 eta transfer "
            f"to this model from {runs} RT retrains with other seeds as the reference mechanism "
            f"(epsilon {options.epsilon:g}, zeta {options.zeta:g}); 0 means vacuous (the runs lie outside "
            "the eta-ball, FACTS 4.2)."
        )
    return TableView("Certified depth: Theorem 1 bounds", header, rows, caption)


@VIEWS.register("certified-curves")
def certified_curves(view: ViewInput) -> FigureView:
    """Theorem 1 bounds vs eta, one panel per forgetting target, one colour per row."""
    etas = _certify_etas(view)
    entries = [e for e in _certify_entries(view) if e.output is not None]
    targets = list(dict.fromkeys((e.labels["protection"], e.labels["cls"]) for e in entries))
    figure = Figure(figsize=(6.0, 3.6 * max(1, len(targets))), layout="constrained")
    for index, (protection, cls) in enumerate(targets):
        axes = figure.add_subplot(max(1, len(targets)), 1, index + 1)
        for entry in entries:
            if (entry.labels["protection"], entry.labels["cls"]) != (protection, cls):
                continue
            lower, upper = _bounds(entry, "lower", etas), _bounds(entry, "upper", etas)
            nan = float("nan")
            line = axes.plot(etas, [100 * u if u is not None else nan for u in upper], "v-",
                             label=f"{entry.labels['row']} upper")[0]  # fmt: skip
            axes.plot(etas, [100 * lo if lo is not None else nan for lo in lower], "^--",
                      color=line.get_color(), label=f"{entry.labels['row']} lower")  # fmt: skip
        _decorate(axes, f"{protection}: class {cls} forgotten", "certified accuracy bound (%)")
    return FigureView("Certified depth: Theorem 1 bounds vs eta", png(figure),
                      "Upper (v, solid) and lower (^, dashed) bounds; gaps are abstentions.")  # fmt: skip
