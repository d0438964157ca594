"""The ``findings`` view: a verdict for every finding of the paper (FACTS section 6) that the
results at hand can test, and ``dememo results DIR --findings``.

Each finding is a claim, a quantity, and a rule. The quantity is computed per seed (the mean
over the targets of that seed: protections, classes, tasks) and judged by the 95% Student
t-interval of its mean across seeds (``dememo.experiments.stats.t_interval``):

- *reproduced* when the whole interval lies on the claim's side of the threshold,
- *contradicted* when the whole interval lies on the other side,
- *inconclusive* otherwise, with the reason: the interval straddles the threshold, fewer than
  ``MIN_SEEDS`` seeds (no interval), data missing, the victim too weak (the Before model's
  utility accuracy below ``MIN_VICTIM_ACCURACY``), the recovery radius not reached (a
  recovery's weight distance at its largest eta below ``RADIUS_REACHED`` x eta; for the LM, its
  recorded ``radius_reached``), the attack collapsed the model (other classes' accuracy below
  ``COLLAPSE`` x theirs before it; an unlearned model that is already below ``COLLAPSE`` x the
  Before model's there is left out of the depth findings), the protection did not hold
  (findings about protected classes need a Before model that is near chance on their clean
  counterparts: Duc at most ``UNLEARNABLE_CEILING``), or a fine-tuned LM did not learn its task
  (its accuracy within chance's 95% interval or one answer to most prompts:
  ``views.llm.learning_problem``).

The rules are pure functions of the entries (labels + metrics) so any spec's results can be
judged: a finding whose data is absent is left out of the view (and reported as missing by
``judge_all``). Thresholds (named constants below):

- ``RECOVERY_GAIN`` = 10 points: recovery restores a model when its target-class accuracy
  after the attack at the largest eta exceeds the accuracy at the smallest eta by more.
- ``RT_TOLERANCE`` = 5 points: an unlearned model matches RT on a set when its accuracy is at
  most RT's + 5 points (the synergy view's tolerance); its utility is kept when its Dt (subset)
  / Dtr (class) accuracy is at least RT's - 5 points.
- ``MIA_TOLERANCE`` = 0.05: a member rate matches RT's when at most RT's + 0.05.
- ``DEPTH_MARGIN`` = 0 points: one kind of forgetting is deeper than another when its recovery
  gain is smaller (the sign of the difference).
- ``MIN_VICTIM_ACCURACY`` = 40%: below it the Before model (or clean victim) is too weak to
  have memorized anything worth forgetting.
- ``UNLEARNABLE_CEILING`` = 30%: above it the Before model has learned the protected classes
  from their noisy images (the paper's premise is Duc near chance: 9.8% for UE-s, Table 14),
  so a protected class is not an unlearnable one and its findings say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dememo.experiments.stats import Estimate, t_interval
from dememo.experiments.studies.base import Entry
from dememo.experiments.views.base import VIEWS, TableView, ViewInput
from dememo.experiments.views.llm import ONE_ANSWER, not_learned

RECOVERY_GAIN = 10.0  # points
RT_TOLERANCE = 5.0  # points
MIA_TOLERANCE = 0.05  # member rate
DEPTH_MARGIN = 0.0  # points
PROTECTION_DROP = 20.0  # points of clean test accuracy a protection must cost (section 6.1)
MIN_VICTIM_ACCURACY = 40.0  # %
UNLEARNABLE_CEILING = 30.0  # % Before accuracy on the protected classes' clean counterparts (Duc)
RADIUS_REACHED = 0.99  # share of eta the recovery's weight distance must reach
COLLAPSE = 0.5  # other classes' accuracy after the attack below this share of before: collapsed
MIN_SEEDS = 2
UNLEARNED = ("IF", "FT", "GA")
FAILED = 100.0  # points over RT counted for a method none of whose scales keeps utility

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    finding: str
    claim: str
    quantity: str
    rule: str
    verdict: str
    reason: str = ""
    estimate: Estimate | None = None

    def value(self) -> str:
        return "–" if self.estimate is None else self.estimate.describe(2)


def judge(values: list[float], threshold: float, above: bool) -> tuple[str, str, Estimate | None]:
    """The verdict of per-seed values against ``threshold``: the claim holds when the mean's
    95% t-interval lies above it (``above``) or below it."""
    if not values:
        return INCONCLUSIVE, "data missing", None
    mean, std, low, high = t_interval(values)
    estimate = Estimate(mean, low, high, std, seeds=len(values))
    if len(values) < MIN_SEEDS or low is None or high is None:
        return INCONCLUSIVE, f"{len(values)} seed: no interval across seeds (needs {MIN_SEEDS})", estimate
    side = ">" if above else "<"
    if (low > threshold) if above else (high < threshold):
        return REPRODUCED, f"interval {side} {threshold:g}", estimate
    if (high < threshold) if above else (low > threshold):
        return CONTRADICTED, f"interval on the other side of {threshold:g}", estimate
    return INCONCLUSIVE, f"interval [{low:.2f}, {high:.2f}] straddles {threshold:g}", estimate


# --- reading the entries ---------------------------------------------------------------------


def _seed(entry: Entry) -> int:
    return int(entry.labels.get("seed", 0))


def method_of(row: str) -> str:
    return row.split("_")[0]


@dataclass(frozen=True)
class Target:
    """One forgetting target of an interplay run: (seed, level, protection, cls, part)."""

    seed: int
    level: str
    protection: str
    cls: int
    part: str


def interplay_index(entries: Iterable[Entry]) -> dict[str, dict[Target, dict[str, dict]]]:
    """role (accuracy = unlearn + accuracy audits, mia, recover) -> target -> row -> metrics."""
    index: dict[str, dict[Target, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for entry in entries:
        labels = entry.labels
        if entry.output is None or "cls" not in labels or "level" not in labels:
            continue
        role = "accuracy" if labels["role"] in ("unlearn", "accuracy") else labels["role"]
        target = Target(_seed(entry), labels["level"], labels["protection"], labels["cls"], labels["part"])
        index[role][target][labels["row"]] = entry.output.metrics
    return index


def _split(metrics: dict | None, name: str, split: str) -> float | None:
    return None if metrics is None else metrics.get((name, split))


def utility_set(level: str) -> str:
    return "Dt" if level == "subset" else "Dtr"


def recovery_gain(metrics: dict) -> tuple[float, float, float] | None:
    """(gain in points, largest eta, distance reached there) of one recovery audit: target-class
    accuracy after the attack at the largest eta minus at the smallest."""
    etas = sorted(float(split[4:]) for name, split in metrics if name == "recovered_accuracy")
    if len(etas) < 2:
        return None
    low, high = etas[0], etas[-1]
    first = metrics[("recovered_accuracy", f"eta={low:g}")]
    last = metrics[("recovered_accuracy", f"eta={high:g}")]
    distance = metrics.get(("distance", f"eta={high:g}"), high)
    return 100 * (last - first), high, distance


class Missing(Exception):
    """A finding's data is absent or unusable; its message is the reason."""


def controls_by_eta(metrics: dict) -> list[tuple[float, float]]:
    """(eta, other classes' accuracy) of one recovery audit, by increasing eta."""
    return sorted((float(split[4:]), v) for (name, split), v in metrics.items() if name == "control_accuracy")


def usable_gain(metrics: dict, what: str = "") -> float | None:
    """The recovery gain in points of one audit (None without a curve); Missing when the attack
    did not reach its radius, or when it collapsed the model: the other classes' accuracy (the
    control set) at the largest eta fell below COLLAPSE x its value at the smallest, so the
    'recovered' class is a one-class predictor's, not a recovery."""
    gain = recovery_gain(metrics)
    if gain is None:
        return None
    points, eta, distance = gain
    where = f"{what}: " if what else ""
    if eta > 0 and distance < RADIUS_REACHED * eta:
        raise Missing(f"radius not reached ({where}distance {distance:.3g} < {RADIUS_REACHED} x {eta:g})")
    controls = controls_by_eta(metrics)
    if len(controls) >= 2 and controls[0][1] > 0 and controls[-1][1] < COLLAPSE * controls[0][1]:
        raise Missing(f"attack collapsed the model ({where}other classes {100 * controls[0][1]:.1f}% -> "
                      f"{100 * controls[-1][1]:.1f}% at eta {controls[-1][0]:g})")  # fmt: skip
    return points


def per_seed(units: dict[int, list[float]]) -> list[float]:
    """The per-seed means of the units' values (seeds in order; a seed without units is dropped)."""
    return [sum(v) / len(v) for _, v in sorted(units.items()) if v]


def differences(units: dict[tuple[int, str], list[float]], plus: str, minus: str) -> list[float]:
    """Per seed (in order): the mean of the ``plus`` group's values minus the ``minus`` group's."""
    seeds = sorted({seed for seed, _ in units})
    return [sum(units[(s, plus)]) / len(units[(s, plus)]) - sum(units[(s, minus)]) / len(units[(s, minus)])
            for s in seeds if units.get((s, plus)) and units.get((s, minus))]  # fmt: skip


def check_victims(index: dict, targets: Iterable[Target]) -> None:
    """Missing('victim too weak ...') when the Before models' utility accuracy is below the threshold."""
    values = [
        _split(index["accuracy"].get(t, {}).get("Before"), "accuracy", utility_set(t.level)) for t in targets
    ]
    values = [v for v in values if v is not None]
    if values and sum(values) / len(values) < MIN_VICTIM_ACCURACY:
        mean = sum(values) / len(values)
        raise Missing(f"victim too weak (Before accuracy {mean:.1f}% < {MIN_VICTIM_ACCURACY:g}%)")


def check_premise(index: dict, targets: Iterable[Target]) -> None:
    """Missing('protection did not hold ...') when the Before models' mean accuracy on the
    protected targets' clean counterparts (Duc) is above UNLEARNABLE_CEILING."""
    values = [_split(index["accuracy"].get(t, {}).get("Before"), "accuracy", "Duc")
              for t in targets if t.part == "Du"]  # fmt: skip
    values = [v for v in values if v is not None]
    if values and sum(values) / len(values) > UNLEARNABLE_CEILING:
        mean = sum(values) / len(values)
        raise Missing(f"protection did not hold (Before accuracy on the protected classes' clean "
                      f"images {mean:.1f}% > {UNLEARNABLE_CEILING:g}%)")  # fmt: skip


def control_before_attack(metrics: dict | None) -> float | None:
    """The other classes' accuracy at a recovery audit's smallest eta (the model as it came)."""
    controls = controls_by_eta(metrics or {})
    return controls[0][1] if controls else None


def broken_by_unlearning(metrics: dict, before: dict | None) -> bool:
    """True when unlearning itself destroyed the model: before any attack, its accuracy on the
    other classes is below ``COLLAPSE`` x the Before model's. Such a model is neither deeply nor
    shallowly forgotten (an assumption of dememo's: the paper compares methods that keep utility),
    so the depth findings leave it out."""
    own, reference = control_before_attack(metrics), control_before_attack(before)
    return own is not None and reference is not None and own < COLLAPSE * reference


def gains(index: dict, select: Callable[[Target, str], bool]) -> dict[tuple[Target, str], float]:
    """Recovery gains of the selected (target, row) audits, without the models that unlearning
    destroyed (``broken_by_unlearning``); Missing when a radius is not reached or an attack
    collapsed the model (``usable_gain``)."""
    found = {}
    for target, rows in index["recover"].items():
        for row, metrics in rows.items():
            if not select(target, row):
                continue
            if row != "Before" and broken_by_unlearning(metrics, rows.get("Before")):
                continue
            points = usable_gain(metrics, row)
            if points is not None:
                found[(target, row)] = points
    return found


# --- the findings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str
    quantity: str
    threshold: float
    above: bool
    measure: Callable[[list[Entry]], list[float]]  # per-seed values; raises Missing

    def rule(self) -> str:
        side = "above" if self.above else "below"
        return f"95% t-interval across seeds {side} {self.threshold:g}"

    def judge(self, entries: list[Entry]) -> Verdict:
        try:
            values = self.measure(entries)
        except Missing as reason:
            return Verdict(self.name, self.claim, self.quantity, self.rule(), INCONCLUSIVE, str(reason))
        verdict, reason, estimate = judge(values, self.threshold, self.above)
        return Verdict(self.name, self.claim, self.quantity, self.rule(), verdict, reason, estimate)


def _unlearning_excess(entries: list[Entry], level: str, part: str, column: str, methods: tuple[str, ...],
                       combine: Callable[[list[float]], float]) -> list[float]:  # fmt: skip
    """Per seed: the mean over targets of combine(per method: the best scale's accuracy on
    ``column`` minus RT's, among rows that keep utility), for forget set ``part``."""
    index = interplay_index(entries)
    targets = [t for t in index["accuracy"] if t.level == level and t.part == part]
    if not targets:
        raise Missing("data missing")
    check_victims(index, targets)
    units: dict[int, list[float]] = defaultdict(list)
    for target in targets:
        rows = index["accuracy"][target]
        rt = rows.get("RT")
        rt_value, rt_utility = _split(rt, "accuracy", column), _split(rt, "accuracy", utility_set(level))
        if rt_value is None or rt_utility is None:
            continue
        per_method = []
        for method in methods:
            excess = [
                value - rt_value
                for row, metrics in rows.items()
                if method_of(row) == method
                and (value := _split(metrics, "accuracy", column)) is not None
                and (_split(metrics, "accuracy", utility_set(level)) or 0.0) >= rt_utility - RT_TOLERANCE
            ]
            if excess:
                per_method.append(min(excess))
            elif any(method_of(row) == method for row in rows):
                per_method.append(FAILED)  # no scale keeps utility: nothing removed
        if per_method:
            units[target.seed].append(combine(per_method))
    values = per_seed(units)
    if not values:
        raise Missing("data missing (no RT row)")
    return values


def finding_i(entries: list[Entry]) -> list[float]:
    return _unlearning_excess(entries, "subset", "Du", "Duc", ("IF", "GA"), max)


def finding_ii(entries: list[Entry]) -> list[float]:
    return _unlearning_excess(entries, "subset", "Du", "Du", UNLEARNED, min)


def finding_iii(entries: list[Entry]) -> list[float]:
    return _unlearning_excess(entries, "subset", "Dc", "Dc", ("IF", "FT"), max)


def finding_iv(entries: list[Entry]) -> list[float]:
    """Per seed: mean excess over RT of IF/GA rows on protected-class targets (Du) minus on clean
    ones (Dc), class level."""
    index = interplay_index(entries)
    targets = [t for t in index["accuracy"] if t.level == "class"]
    if not {t.part for t in targets} >= {"Du", "Dc"}:
        raise Missing("data missing (needs protected and clean class targets)")
    check_victims(index, targets)
    check_premise(index, targets)
    by_part: dict[tuple[int, str], list[float]] = defaultdict(list)
    for target in targets:
        rows = index["accuracy"][target]
        rt = _split(rows.get("RT"), "accuracy", target.part)
        for row, metrics in rows.items():
            value = _split(metrics, "accuracy", target.part)
            if method_of(row) in ("IF", "GA") and rt is not None and value is not None:
                by_part[(target.seed, target.part)].append(value - rt)
    values = differences(by_part, "Du", "Dc")
    if not values:
        raise Missing("data missing")
    return values


def _mia_gaps(entries: list[Entry], forgotten_only: bool) -> list[float]:
    """Per seed: mean over targets of the prob-MIA rate of the unlearned rows minus RT's (the
    smallest over rows, or, with ``forgotten_only``, the mean over rows that look forgotten by
    accuracy: forget-set accuracy at most RT's + RT_TOLERANCE)."""
    index = interplay_index(entries)
    targets = [t for t in index["mia"] if t.part == "Du" or t.level == "class"]
    if not targets:
        raise Missing("data missing (no MIA audits)")
    check_victims(index, targets)
    units: dict[int, list[float]] = defaultdict(list)
    for target in targets:
        rows = index["mia"][target]
        rt = _split(rows.get("RT"), "svc_rate", "probability")
        if rt is None:
            continue
        accuracy = index["accuracy"].get(target, {})
        rt_forget = _split(accuracy.get("RT"), "accuracy", target.part)
        gaps = []
        for row, metrics in rows.items():
            rate = _split(metrics, "svc_rate", "probability")
            if method_of(row) not in UNLEARNED or rate is None:
                continue
            if forgotten_only:
                forget = _split(accuracy.get(row), "accuracy", target.part)
                if forget is None or rt_forget is None or forget > rt_forget + RT_TOLERANCE:
                    continue
            gaps.append(rate - rt)
        if gaps:
            units[target.seed].append(sum(gaps) / len(gaps) if forgotten_only else min(gaps))
    values = per_seed(units)
    if not values:
        raise Missing("no model forgotten by accuracy" if forgotten_only else "data missing (no RT MIA)")
    return values


def finding_vi(entries: list[Entry]) -> list[float]:
    return _mia_gaps(entries, forgotten_only=False)


def finding_viii(entries: list[Entry]) -> list[float]:
    return _mia_gaps(entries, forgotten_only=True)


def shallow_unlearnability(entries: list[Entry]) -> list[float]:
    """Per seed: mean recovery gain of models trained on protected data (interplay Before models
    on a protected class; recovery-protected victims of a protection). Where the target also has
    an RT model's recovery, RT's gain is subtracted: an attack that teaches the class to a model
    that never saw it (RT) shows the ball's reach, not a memory the protection hid."""
    index = interplay_index(entries)
    targets = [t for t in index["recover"] if t.part == "Du" and "Before" in index["recover"][t]]
    check_victims(index, targets)
    check_premise(index, targets)
    units: dict[int, list[float]] = defaultdict(list)
    for (target, _), gain in gains(index, lambda t, row: t.part == "Du" and row == "Before").items():
        rt = index["recover"][target].get("RT")
        rt_gain = usable_gain(rt, "RT") if rt is not None else None
        units[target.seed].append(gain - (rt_gain or 0.0))
    for entry in entries:  # recovery-protected (Figure 9): no class target, a 'method' label
        if entry.labels.get("role") != "recover" or entry.output is None or "cls" in entry.labels:
            continue
        if entry.labels.get("method") in (None, "clean"):
            continue
        points = usable_gain(entry.output.metrics, entry.labels.get("method", ""))
        if points is not None:
            units[_seed(entry)].append(points)
    values = per_seed(units)
    if not values:
        raise Missing("data missing (no recovery of a protected model)")
    return values


def ft_deepest(entries: list[Entry]) -> list[float]:
    """Per seed: mean recovery gain of IF/GA-unlearned models minus FT-unlearned ones."""
    index = interplay_index(entries)
    check_victims(index, index["recover"])
    found = gains(index, lambda t, row: method_of(row) in UNLEARNED)
    units: dict[tuple[int, str], list[float]] = defaultdict(list)
    for (target, row), gain in found.items():
        units[(target.seed, "FT" if method_of(row) == "FT" else "other")].append(gain)
    values = differences(units, "other", "FT")
    if not values:
        raise Missing("data missing (needs recovery of FT and IF/GA models)")
    return values


def protected_deeper(entries: list[Entry]) -> list[float]:
    """Per seed: mean recovery gain of unlearned models on clean-class targets minus on protected ones."""
    index = interplay_index(entries)
    check_victims(index, index["recover"])
    check_premise(index, index["recover"])
    found = gains(index, lambda t, row: t.level == "class" and method_of(row) in UNLEARNED)
    units: dict[tuple[int, str], list[float]] = defaultdict(list)
    for (target, _), gain in found.items():
        units[(target.seed, target.part)].append(gain)
    values = differences(units, "Dc", "Du")
    if not values:
        raise Missing("data missing (needs recovery on protected and clean classes)")
    return values


def _lm_index(entries: list[Entry]) -> dict[tuple[int, str, str, str], dict]:
    done = [e for e in entries if e.output is not None and "task" in e.labels and "column" in e.labels]
    return {(_seed(e), e.labels["task"], e.labels["column"], e.labels["role"]): e.output.metrics  # type: ignore[union-attr]
            for e in done}  # fmt: skip


def check_lm_learned(entries: list[Entry]) -> None:
    """Missing when a fine-tuned LM (Clean or RegText) did not learn its task: accuracy within
    chance's 95% interval or one answer to most prompts (``views.llm.learning_problem``)."""
    failures = not_learned(entries)
    if failures:
        (seed, task, column), reason = sorted(failures.items())[0]
        raise Missing(f"fine-tuned LM did not learn ({column} on {task}, seed {seed}: {reason}; "
                      f"{len(failures)} model-task pair(s) in all)")  # fmt: skip


def lm_counterproductive(entries: list[Entry]) -> list[float]:
    """Per seed: the largest (over tasks and GA/NPO/FT) accuracy (points) on the forgotten task
    after unlearning minus the RegText model's before it."""
    index = _lm_index(entries)
    if index:
        check_lm_learned(entries)
    units: dict[int, list[float]] = defaultdict(list)
    for (seed, task, column, role), metrics in index.items():
        before = index.get((seed, task, "regtext", "model"), {}).get(("accuracy", task))
        after = metrics.get(("accuracy", "forget"))
        if role == "model" and column in ("ga", "npo", "ft") and before is not None and after is not None:
            units[seed].append(100 * (after - before))
    values = [max(v) for _, v in sorted(units.items()) if v]
    if not values:
        raise Missing("data missing (no LM unlearning results)")
    return values


def lm_destroyed(metrics: dict | None) -> bool:
    """True when unlearning destroyed the LM: it gives one answer to more than ``ONE_ANSWER`` of
    the retained tasks' prompts (as ``broken_by_unlearning`` for images, its flat recovery curve
    is not deep forgetting)."""
    share = (metrics or {}).get(("yes_share", "retain"))
    return share is not None and max(share, 1 - share) > ONE_ANSWER


def lm_shallow(entries: list[Entry]) -> list[float]:
    """Per seed: mean recovery gain (points) of the LM unlearned by GA/NPO/FT on the forgotten task,
    without the LMs that unlearning destroyed (``lm_destroyed``); Missing when a fine-tuned LM did
    not learn or an attack did not reach its largest radius."""
    index = _lm_index(entries)
    if index:
        check_lm_learned(entries)
    units: dict[int, list[float]] = defaultdict(list)
    for (seed, task, column, role), metrics in index.items():
        if role != "recover" or column not in ("ga", "npo", "ft"):
            continue
        if lm_destroyed(index.get((seed, task, column, "model"))):
            continue
        renamed = {("recovered_accuracy", s): v for (n, s), v in metrics.items() if n == "task_accuracy"}
        gain = recovery_gain(renamed)
        if gain is None:
            continue
        split = f"eta={gain[1]:g}"
        if metrics.get(("radius_reached", split)) == 0:  # recorded per eta (relative etas: radius in l2)
            distance, radius = metrics.get(("distance", split), 0.0), metrics.get(("radius", split), 0.0)
            raise Missing(f"radius not reached ({column} on {task}, seed {seed}: distance {distance:.3g} < "
                          f"radius {radius:.3g} at {split})")  # fmt: skip
        units[seed].append(gain[0])
    values = per_seed(units)
    if not values:
        raise Missing("data missing (no LM recovery)")
    return values


def protection_effective(entries: list[Entry]) -> list[float]:
    """Per seed: mean drop (points) of clean test accuracy from the clean victim to protected ones."""
    clean: dict[tuple, float] = {}
    protected: list[tuple[tuple, int, float]] = []
    for e in entries:
        labels = e.labels
        if e.output is None or labels.get("role") != "victim" or "method" not in labels:
            continue
        where = (_seed(e), labels.get("victim"), labels.get("augment"))
        accuracy = e.metric("accuracy", "test")
        if accuracy is None:
            continue
        if labels["method"] == "clean":
            clean[where] = 100 * accuracy
        elif labels.get("ratio", 1.0) == 1.0:
            protected.append((where, where[0], 100 * accuracy))
    if clean and sum(clean.values()) / len(clean) < MIN_VICTIM_ACCURACY:
        raise Missing(f"victim too weak (clean accuracy {sum(clean.values()) / len(clean):.1f}%)")
    units: dict[int, list[float]] = defaultdict(list)
    for where, seed, accuracy in protected:
        if where in clean:
            units[seed].append(clean[where] - accuracy)
    values = per_seed(units)
    if not values:
        raise Missing("data missing (no protected victims)")
    return values


FINDINGS = (
    Finding("6.1 (Table 3)", "Unlearnable examples make a victim's clean test accuracy drop.",
            "clean test accuracy (clean victim) - (protected victim), points, mean over protections",
            PROTECTION_DROP, True, protection_effective),
    Finding("I", "With proper hyperparameters IF and GA remove leaked clean knowledge (Acc Duc down to RT's) "
                 "while keeping utility.",
            "subset Du-forget: Acc(Duc) of the best IF/GA scale keeping utility - RT's, worse method, points",
            RT_TOLERANCE, False, finding_i),
    Finding("II", "No IF/FT/GA run removes protected data (Acc Du) as well as RT without hurting utility.",
            "subset Du-forget: Acc(Du) of the best method and scale keeping utility - RT's, points",
            RT_TOLERANCE, True, finding_ii),
    Finding("III", "IF and FT remove clean data Dc while preserving test accuracy.",
            "subset Dc-forget: Acc(Dc) of the best IF/FT scale keeping utility - RT's, worse method, points",
            RT_TOLERANCE, False, finding_iii),
    Finding("IV", "Protected classes need stronger intervention than clean ones for IF and GA.",
            "class level: IF/GA forget-set accuracy - RT's, protected classes minus clean ones, points",
            DEPTH_MARGIN, True, finding_iv),
    Finding("VI", "No unlearning method brings membership leakage down to RT's.",
            "prob-MIA member rate of the lowest IF/FT/GA run - RT's (forgotten set's clean counterparts)",
            MIA_TOLERANCE, True, finding_vi),
    Finding("VIII", "Models that look forgotten by accuracy keep membership leakage.",
            "prob-MIA rate - RT's of runs whose forget-set accuracy is within RT's + 5 points",
            MIA_TOLERANCE, True, finding_viii),
    Finding("6.3.1", "Unlearnability is shallow: a small weight perturbation restores the protected class.",
            "recovery gain of models trained on protected data (largest eta vs smallest) - RT's where "
            "the target has an RT model, points",
            RECOVERY_GAIN, True, shallow_unlearnability),
    Finding("6.3.2 (FT)", "Only FT forgets deeply: IF/GA-unlearned models recover more than FT ones.",
            "recovery gain of IF/GA models - of FT models, points", DEPTH_MARGIN, True, ft_deepest),
    Finding("6.3.2 (protected)", "Protected-class forgetting is deeper than clean-class forgetting.",
            "recovery gain of unlearned models on clean classes - on protected classes, points",
            DEPTH_MARGIN, True, protected_deeper),
    Finding("6.3.3 (memorization)", "Unlearning the LM is counterproductive: a task's accuracy rises above "
                                    "RegText's.",
            "largest GA/NPO/FT forget-task accuracy - RegText's, points", DEPTH_MARGIN, True,
            lm_counterproductive),
    Finding("6.3.3 (shallow)", "The LM's forgetting is shallow: recovery restores the forgotten task.",
            "recovery gain of GA/NPO/FT LMs on the forgotten task, points", RECOVERY_GAIN, True, lm_shallow),
)  # fmt: skip


def judge_all(entries: list[Entry], *, with_missing: bool = False) -> list[Verdict]:
    """Every finding's verdict; those whose data is missing only with ``with_missing``."""
    verdicts = [finding.judge(entries) for finding in FINDINGS]
    return [v for v in verdicts if with_missing or not v.reason.startswith("data missing")]


def recorded_verdicts(results: Path) -> dict[str, list[Verdict]]:
    """scale -> verdicts over the entries of every reproduction recorded in ``results`` at that
    scale (pooled, each stage counted once per label set: specs that share stages share data)."""
    from dememo.experiments.reproduce import stored_entries
    from dememo.experiments.results import ResultsDB

    db = ResultsDB.in_directory(results, create=False)
    try:
        pooled: dict[str, dict[tuple, Entry]] = defaultdict(dict)
        for record in db.reproductions():
            for e in stored_entries(db, record["spec"], record["scale"]):
                pooled[record["scale"]][(e.key, tuple(sorted(e.labels.items(), key=str)))] = e
    finally:
        db.close()
    return {scale: judge_all(list(entries.values())) for scale, entries in pooled.items()}


HEADER = ["Finding", "Claim", "Quantity", "Value (95% interval)", "Rule", "Verdict", "Reason"]


def verdict_rows(verdicts: list[Verdict]) -> list[list[str]]:
    return [[v.finding, v.claim, v.quantity, v.value(), v.rule, v.verdict, v.reason] for v in verdicts]


@VIEWS.register("findings")
def findings_view(view: ViewInput) -> TableView:
    """The paper's findings that these results can test, each with its verdict."""
    verdicts = judge_all(view.entries)
    caption = (
        "Each finding's quantity is computed per seed (mean over its targets) and judged by the 95% "
        "Student t-interval of the mean across seeds: reproduced when the interval lies on the claim's "
        "side of the threshold, contradicted when on the other, inconclusive otherwise (with the reason). "
        f"Thresholds: recovery gain {RECOVERY_GAIN:g} points, RT tolerance {RT_TOLERANCE:g} points, MIA "
        f"tolerance {MIA_TOLERANCE:g}, victim at least {MIN_VICTIM_ACCURACY:g}% accurate, recovery radius "
        f"reached at {RADIUS_REACHED:g} x eta, an attack that leaves the other classes below {COLLAPSE:g} x "
        f"their accuracy counts as a collapse, not a recovery, and an unlearned model already below "
        f"{COLLAPSE:g} x the Before model's accuracy on the other classes is left out of the depth findings "
        "(unlearning destroyed it) (docs/ARCHITECTURE.md, Experiments)."
    )
    if not verdicts:
        caption = "No finding of the paper can be tested with these results. " + caption
    return TableView("Findings of the paper: verdicts", HEADER, verdict_rows(verdicts), caption)
