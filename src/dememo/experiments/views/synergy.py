"""Table 5 (the synergy of unlearnability and unlearning), derived from Tables 10-25-style
results with one stated rule, applied alike to this run's results and the paper's numbers.

The paper's Table 5 is qualitative and its symbols are lost in the text (FACTS 7.1), so
dememo derives it. A cell (forgotten class, scale) of a method *succeeds* when the model
is not damaged, keeps its utility (Dt at subset level, Dtr at class level, at least RT's
minus ``TOLERANCE`` points) and brings the column's quantity down to RT's (at most RT's
plus ``TOLERANCE`` points, or ``MIA_TOLERANCE`` for MIA rates). It is *counterproductive*
when the quantity rises above the Before model's (accuracy) or above both Before and RT
(MIA, the up-arrow rule of Tables 18-25). Per scale, a majority of the classes decides;
then ✓ every scale succeeds, △ some scale does (hyperparameter-sensitive), ▲ none does
and a scale is counterproductive, ✗ otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dememo.audit.mia import is_damaged
from dememo.experiments.studies.interplay import InterplaySettings
from dememo.experiments.studies.interplay_levels import InterplayLevelsSettings
from dememo.experiments.views.base import VIEWS, TableView, ViewInput
from dememo.experiments.views.interplay import Results, chance, paper_name, utility
from dememo.reference import interplay_tables, mia_tables

TOLERANCE = 5.0  # accuracy points
MIA_TOLERANCE = 0.05  # member rate
SYMBOLS = {"good": "✓", "sensitive": "△", "fail": "✗", "counter": "▲", "none": "–"}


@dataclass(frozen=True)
class Column:
    """One Table 5 column: which level, forget set and quantity it judges."""

    title: str
    level: str
    quantity: str  # an accuracy column (Du, Duc) or 'mia'


COLUMNS = (
    Column("Poison: subset (Acc Du)", "subset", "Du"),
    Column("Poison: class (Acc Du)", "class", "Du"),
    Column("Leaked: subset (Acc Duc)", "subset", "Duc"),
    Column("Leaked: subset (MIA prob)", "subset", "mia"),
    Column("Leaked: class (Acc Duc)", "class", "Duc"),
    Column("Leaked: class (MIA prob)", "class", "mia"),
)

# (protection, cls, row, quantity) -> value; quantity an accuracy column, 'utility' or 'mia'
Lookup = Callable[[str, int, str, str], float | None]


def run_lookup(results: Results, level: str) -> Lookup:
    def value(protection: str, cls: int, row: str, quantity: str) -> float | None:
        if quantity == "mia":
            return results.mia.get((protection, cls, "Du", row), {}).get("probability")
        column = utility(level) if quantity == "utility" else quantity
        return results.accuracy.get((protection, cls, "Du", row), {}).get(column)

    return value


def paper_lookup(level: str) -> Lookup:
    accuracy, mia = interplay_tables(), mia_tables()

    def value(protection: str, cls: int, row: str, quantity: str) -> float | None:
        name = paper_name(protection)
        if quantity == "mia":
            return mia.get((name, level, row, cls, "probability"), (None, False))[0]
        column = utility(level) if quantity == "utility" else quantity
        where = ("-" if row == "Before" else "Du") if level == "subset" else f"class{cls}"
        return accuracy.get((name, level, where, row, cls, column), (None, False))[0]

    return value


def judge(value: Lookup, protection: str, cls: int, row: str, quantity: str, floor: float) -> str:
    """'success', 'counter', 'fail', or 'missing' (no accuracy for this model or for RT);
    ``floor`` is the chance level (%) below 1.5 x which a model counts as damaged."""
    mine, rt, before = (value(protection, cls, r, quantity) for r in (row, "RT", "Before"))
    kept, rt_kept = value(protection, cls, row, "utility"), value(protection, cls, "RT", "utility")
    if kept is None or rt_kept is None:
        return "missing"
    if mine is None or rt is None or is_damaged(kept, floor):  # a '–' of the paper's MIA tables: damaged
        return "fail"
    if quantity == "mia":
        if before is not None and mine > before and mine > rt:
            return "counter"
        deep = mine <= rt + MIA_TOLERANCE
    else:
        if before is not None and mine > before:
            return "counter"
        deep = mine <= rt + TOLERANCE
    return "success" if deep and kept >= rt_kept - TOLERANCE else "fail"


def symbol(outcomes: dict[str, list[str]]) -> str:
    """Outcomes per scale (one per class) -> the Table 5 symbol; '–' when nothing was measured."""
    scales = [[o for o in per_scale if o != "missing"] for per_scale in outcomes.values()]
    scales = [o for o in scales if o]
    if not scales:
        return SYMBOLS["none"]

    def most(kind: str, of: list[str]) -> bool:
        return 2 * of.count(kind) > len(of)

    succeeded = [most("success", o) for o in scales]
    if all(succeeded):
        return SYMBOLS["good"]
    if any(succeeded):
        return SYMBOLS["sensitive"]
    return SYMBOLS["counter"] if any(most("counter", o) for o in scales) else SYMBOLS["fail"]


def cell(value: Lookup, settings: InterplaySettings, protection: str, method: str, quantity: str) -> str:
    """The symbol of one method and protection in one column, from the settings' classes and scales."""
    protected = settings.scenario_settings().protected_classes
    classes = [c for c in settings.classes if settings.level == "subset" or c in protected]
    floor = chance(settings)
    return symbol({scale: [judge(value, protection, cls, f"{method.upper()}_{scale}", quantity, floor)
                           for cls in classes] for scale in settings.scales})  # fmt: skip


@VIEWS.register("synergy")
def synergy(view: ViewInput) -> TableView:
    """Table 5, derived: per protection and method, run's symbol (paper's symbol)."""
    settings: InterplayLevelsSettings = view.settings
    blocks = {block.level: block for block in settings.blocks()}
    results = {level: Results.of(view.entries, level) for level in blocks}
    protections = list(dict.fromkeys(p for block in blocks.values() for p in block.protections))
    methods = list(dict.fromkeys(m for block in blocks.values() for m in block.methods if m != "rt"))
    rows = []
    for protection in protections:
        for method in methods:
            cells = [f"{method.upper()} ({paper_name(protection)})"]
            for column in COLUMNS:
                block = blocks.get(column.level)
                if block is None or protection not in block.protections or method not in block.methods:
                    cells.append(SYMBOLS["none"])
                    continue
                audited = column.quantity != "mia" or block.mia is not None
                lookup = run_lookup(results[column.level], column.level)
                run = cell(lookup, block, protection, method, column.quantity) if audited else SYMBOLS["none"]
                paper = cell(paper_lookup(column.level), block, protection, method, column.quantity)
                cells.append(f"{run} ({paper})")
            rows.append(cells)
    caption = (
        "Table 5 derived (the paper's symbols are lost in its text): this run's symbol, the same rule on the "
        "paper's Tables 10-25 in parentheses (same protections, classes and scales). A cell (class, scale) "
        f"succeeds when the model is not damaged, its utility (Dt subset, Dtr class) is at least RT's - "
        f"{TOLERANCE:g} points and the column's quantity at most RT's + {TOLERANCE:g} points (MIA: + "
        f"{MIA_TOLERANCE:g}); counterproductive when it rises above Before's (MIA: above Before and RT). "
        "Per scale a majority of classes decides: ✓ both scales succeed, △ one does (hyperparameter-"
        "sensitive), ▲ none and one is counterproductive, ✗ failure, – not run. Poison columns: forgetting "
        "the protected data Du; Leaked: the clean knowledge it leaked (Duc); class columns use the protected "
        "classes only. The paper's Depth column needs the recovery audits and is not derived here."
    )
    header = ["Method (protection)"] + [c.title for c in COLUMNS]
    return TableView("Table 5: synergy of unlearnability and unlearning (derived)", header, rows, caption)
