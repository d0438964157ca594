"""Recovery and certified-depth specs (Figures 2, 9-11, 13-18; section 7) on the stage graph."""

from __future__ import annotations

import pytest

from dememo.experiments import ResultsDB, load_spec, plan_spec, reproduce
from dememo.experiments.graph import GraphOutcome
from dememo.experiments.report import render_report
from dememo.experiments.reproduce import stored_entries, unreached_radii
from dememo.experiments.stages import Stage, StageContext, StageOutput
from dememo.experiments.studies.base import Entry
from dememo.experiments.views import VIEWS, FigureView, ViewInput
from dememo.experiments.views.recovery import COLLAPSE_SHARE, curve_of

NEW_SPECS = ("figure9", "figure2", "figure10", "figure11", "figure13", "figure14", "figure15", "figure16-18",
             "certified")  # fmt: skip


@pytest.fixture(scope="module")
def smoke_results(digits, tmp_path_factory):
    """Every new spec reproduced at smoke scale into one results directory (shared stages run once)."""
    root = tmp_path_factory.mktemp("recovery")
    context = StageContext(root / "artifacts", preloaded=(digits,), device="cpu")
    for name in NEW_SPECS:
        reproduce(load_spec(name), "smoke", root / "results", context).raise_for_failures()
    return root / "results"


def entries_of(results, spec: str) -> list[Entry]:
    db = ResultsDB.in_directory(results, create=False)
    try:
        return stored_entries(db, spec, "smoke")
    finally:
        db.close()


def test_every_new_spec_runs_at_smoke_scale_and_renders(smoke_results):
    html = render_report(smoke_results)  # every view of every spec, figures as embedded PNG
    assert "Failed stages" not in html and "have no result yet" not in html
    for name in NEW_SPECS:
        spec = load_spec(name)
        assert f"({name}, smoke scale)" in html
        entries = entries_of(smoke_results, name)
        assert entries and all(e.output is not None for e in entries), name
        for view in spec.views:
            if "table" in view or view == "certified-bounds":
                shown = VIEWS.get(view)(ViewInput(spec, "smoke", spec.settings("smoke"), entries))
                assert shown.rows and all("–" not in cell for r in shown.rows for cell in r), (name, view)
    assert load_spec("certified").paper.extension
    # Theorem 2 from two RT retrains with other seeds: the runs lie far outside the eta-ball
    certify = [e for e in entries_of(smoke_results, "certified") if e.labels["role"] == "certify"]
    assert {e.labels["row"] for e in certify} == {"RT", "IF_large", "FT_large", "GA_large", "Before"}
    assert all(e.metric("transfer_probability") == 0.0 for e in certify)


def test_figure9_attacks_the_whole_test_set_with_clean_training_data(smoke_results):
    spec = load_spec("figure9")
    recover = [e for e in entries_of(smoke_results, "figure9") if e.labels["role"] == "recover"]
    assert {e.labels["method"] for e in recover} == {"ops", "ue-c", "clean"}
    for entry in recover:
        curve = curve_of(entry)
        assert curve.etas == [0.0, 0.5, 2.0]
        # the ball bounds the shift: no attack moves the weights further than its eta
        assert all(d <= eta + 1e-6 for d, eta in zip(curve.distance, curve.etas, strict=True))
        assert not curve.control  # no target class: nothing to collapse onto
    # eta 0 is the victim as trained: its test accuracy, on the whole test split
    victims = {
        e.labels["method"]: e for e in entries_of(smoke_results, "figure9") if e.labels["role"] == "victim"
    }
    for entry in recover:
        trained = victims[entry.labels["method"]].metric("accuracy", "test")
        assert curve_of(entry).accuracy[0] == pytest.approx(trained, abs=1e-6)
    # at cpu scale its protect and train stages are Table 3's (same keys): a run after table3 reuses them
    same = load_spec("table3").settings("cpu").model_dump()
    figure9 = spec.settings("cpu").model_dump()
    assert {k: v for k, v in figure9.items() if k not in ("recover", "notes")} == {
        k: v for k, v in same.items() if k != "notes"
    }
    cpu_keys = {p.stage.key for p in plan_spec(spec, "cpu") if p.stage.kind != "audit"}
    assert cpu_keys == {p.stage.key for p in plan_spec(load_spec("table3"), "cpu")}


def test_class_figures_share_stages_and_audit_every_row(smoke_results):
    planned = {name: plan_spec(load_spec(name), "cpu") for name in ("figure2", "figure10", "certified")}
    keys = {name: {p.stage.key for p in plan if p.labels["role"] in ("protect", "train", "unlearn")}
            for name, plan in planned.items()}  # fmt: skip
    assert keys["figure2"] <= keys["figure10"] and keys["certified"] <= keys["figure10"]
    rows = {e.labels["row"] for e in entries_of(smoke_results, "figure10") if e.labels["role"] == "recover"}
    assert rows == {"RT", "IF_large", "FT_large", "GA_large", "Before", "clean"}
    for entry in entries_of(smoke_results, "figure10"):
        if entry.labels["role"] == "recover":
            curve = curve_of(entry)
            assert len(curve.control) == len(curve.etas)  # class-level: the collapse check is measured
            assert all(d <= eta + 1e-6 for d, eta in zip(curve.distance, curve.etas, strict=True))


def _recover_entry(row: str, cls: int, accuracy: list[float], control: list[float]) -> Entry:
    metrics = {}
    for eta, a, c in zip((0.0, 0.4, 0.8), accuracy, control, strict=True):
        metrics[("recovered_accuracy", f"eta={eta:g}")] = a
        metrics[("control_accuracy", f"eta={eta:g}")] = c
        metrics[("distance", f"eta={eta:g}")] = eta
    labels = {"protection": "ue-s", "level": "class", "cls": cls, "part": "Du", "row": row, "role": "recover"}
    return Entry(labels, f"{row}{cls}", StageOutput("audit/x", metrics))


def test_collapse_is_flagged_when_other_classes_accuracy_drops():
    spec = load_spec("figure10")
    settings = spec.settings("cpu")
    entries = [
        _recover_entry("FT_large", 0, [0.0, 0.9, 1.0], [0.40, 0.38, 0.10]),  # collapses at 0.8
        _recover_entry("RT", 0, [0.0, 0.1, 0.3], [0.40, 0.39, 0.35]),
        _recover_entry("FT_large", 5, [0.0, 0.2, 0.5], [0.40, 0.40, 0.39]),
    ]
    table = VIEWS.get("recovery-class-table")(ViewInput(spec, "cpu", settings, entries))
    cells = {(r[1], r[2]): r[3:] for r in table.rows}
    assert cells[("0 (protected)", "FT_large")] == [
        "0.00 (40.00)",
        "90.00 (38.00)",
        "100.00 (10.00) collapse",
    ]
    assert "collapse" not in " ".join(cells[("0 (protected)", "RT")] + cells[("5 (clean)", "FT_large")])
    assert (
        "ue-s class 0 FT_large at eta 0.8" in table.caption
        and "class 5" not in table.caption.split("Collapse")[1]
    )
    assert f"{100 * COLLAPSE_SHARE:g}%" in table.caption
    for name in ("recovery-class", "recovery-ft-classes"):
        figure = VIEWS.get(name)(ViewInput(spec, "cpu", settings, entries))
        assert isinstance(figure, FigureView) and "FT_large at eta 0.8" in figure.caption
    healthy = VIEWS.get("recovery-class-table")(ViewInput(spec, "cpu", settings, entries[1:]))
    assert "No collapse" in healthy.caption


def test_class_recovery_table_averages_the_seeds_with_a_t_interval():
    """Three seeds of one row: the mean (not one seed's value) with its 95% t-interval."""
    spec = load_spec("figure10")
    entries = []
    for seed, last in enumerate((0.6, 0.7, 0.8)):
        entry = _recover_entry("Before", 0, [0.0, 0.5, last], [0.40, 0.40, 0.40])
        entries.append(Entry({**entry.labels, "seed": seed}, f"{entry.key}{seed}", entry.output))
    table = VIEWS.get("recovery-class-table")(ViewInput(spec, "cpu", spec.settings("cpu"), entries))
    (row,) = table.rows
    assert row[-1].startswith("70.00 [45.16, 94.84] (40.00)") and "3 seeds" in table.caption


def test_certified_view_shows_abstentions_and_the_right_confidence():
    spec = load_spec("certified")
    settings = spec.settings("cpu")
    metrics = {("clean_value", ""): 0.5, ("certified_lower", "eta=0"): 0.4, ("certified_upper", "eta=0"): 0.6,
               ("certified_upper", "eta=0.002"): 0.7}  # fmt: skip
    labels = {"protection": "ue-s", "level": "class", "cls": 0, "part": "Du", "row": "RT", "role": "certify"}
    pending = Entry({**labels, "row": "Before"}, "b", None)
    table = VIEWS.get("certified-bounds")(
        ViewInput(spec, "cpu", settings, [Entry(labels, "a", StageOutput("x", metrics)), pending])
    )
    rt, before = table.rows  # the paper's row order: RT first, Before last
    assert rt[:4] == ["ue-s", "0", "RT", "50.00"]
    assert rt[4:7] == ["40.00 / 60.00", "abstain / 70.00", "abstain / abstain"]
    assert before[2] == "Before" and set(before[4:-1]) == {"– / –"}  # not run yet: not an abstention
    assert table.header[-1] == "Theorem 2 (eta 0.02)" and rt[-1] == "–"
    assert "probability >= 1 - q = 0.3" in table.caption
    figure = VIEWS.get("certified-curves")(
        ViewInput(spec, "cpu", settings, [Entry(labels, "a", StageOutput("x", metrics))])
    )
    assert figure.png.startswith(b"\x89PNG")


def _reach_entry(row: str, distances: list[float], reached: list[float] | None) -> Entry:
    entry = _recover_entry(row, 0, [0.0, 0.5, 0.6], [0.4, 0.4, 0.4])
    for eta, d in zip((0.0, 0.4, 0.8), distances, strict=True):
        entry.output.metrics[("distance", f"eta={eta:g}")] = d
        if reached is not None:
            entry.output.metrics[("radius_reached", f"eta={eta:g}")] = reached[(0.0, 0.4, 0.8).index(eta)]
    return entry


def test_an_attack_that_cannot_reach_its_radius_is_flagged():
    """Issue 17: the lifecycle demo's 3-step attack moved 0.1406 at eta 0.4 and 0.8 alike."""
    spec = load_spec("figure10")
    settings = spec.settings("cpu")
    entries = [
        _reach_entry("FT_large", [0.0, 0.1406, 0.1406], [1.0, 0.0, 0.0]),
        _reach_entry("RT", [0.0, 0.4, 0.8], [1.0, 1.0, 1.0]),
        _reach_entry("Before", [0.0, 0.4, 0.3], None),  # recorded before issue 17: by distance
    ]
    view = ViewInput(spec, "cpu", settings, entries)
    table = VIEWS.get("recovery-class-table")(view)
    cells = {r[2]: r[3:] for r in table.rows}
    assert cells["FT_large"] == ["0.00 (40.00)", "50.00* (40.00)", "60.00* (40.00)"]
    assert cells["RT"] == ["0.00 (40.00)", "50.00 (40.00)", "60.00 (40.00)"]
    assert cells["Before"][1:] == ["50.00 (40.00)", "60.00* (40.00)"]
    assert (
        "WARNING ue-s class 0 FT_large: radius not reached at eta 0.4 (distance 0.14), eta 0.8"
        in table.caption
    )
    assert (
        "RT: radius" not in table.caption
        and "Before: radius not reached at eta 0.8 (distance 0.3)" in table.caption
    )
    figure = VIEWS.get("recovery-class")(view)
    assert "hollow: radius not reached" in figure.caption and "FT_large: radius not reached" in figure.caption
    spec = load_spec("lifecycle")
    entries = [_reach_entry("FT_small", [0.0, 0.1406, 0.1406], [1.0, 0.0, 0.0])]
    entries[0].labels["protection"] = "ops"
    view = ViewInput(spec, "cpu", spec.settings("cpu"), entries)
    summary = VIEWS.get("lifecycle-summary")(view)
    row = next(r for r in summary.rows if r[1] == "FT_small")
    assert row[8:10] == ["60.00* (40.00)", "0.14 / 0.8*"] and "distance" in summary.header
    assert "ops FT_small: radius not reached at eta 0.4" in summary.caption
    assert "ops FT_small: radius not reached" in VIEWS.get("lifecycle-recovery")(view).caption
    outcome = GraphOutcome({"k": Stage("audit", {}, {}, label="audit recover of FT")},
                           outputs={"k": entries[0].output})  # fmt: skip
    assert unreached_radii(outcome) == [
        "audit recover of FT (eta=0.4: distance 0.14; eta=0.8: distance 0.14)"
    ]
