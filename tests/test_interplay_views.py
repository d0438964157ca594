"""The interplay views on hand-made entries (Tables 10-25 layouts, the arrow and '–' rules,
Figures 5-8's gaps, Table 5's rule), and the interplay specs at smoke scale end to end."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dememo.cli import app
from dememo.experiments import load_spec
from dememo.experiments.stages import StageOutput
from dememo.experiments.studies.base import Entry
from dememo.experiments.studies.interplay import InterplaySettings
from dememo.experiments.views import VIEWS, FigureView, ViewInput
from dememo.experiments.views.interplay import Results, prob_gaps
from dememo.experiments.views.synergy import cell, judge, paper_lookup, symbol

VICTIM = {"dataset": "digits", "model": "mlp", "recipe": "quick"}


def settings(level: str, classes: list[int], **extra) -> InterplaySettings:
    return InterplaySettings.model_validate({"victim": VICTIM, "level": level, "protections": ["ops"],
                                             "classes": classes, "methods": ["rt", "ft"], "scales": ["small"],
                                             "mia": {}, **extra})  # fmt: skip


def entry(level: str, cls: int, part: str, row: str, role: str, **metrics: float) -> Entry:
    labels = {"protection": "ops", "level": level, "cls": cls, "part": part, "row": row, "role": role}
    name = "svc_rate" if role == "mia" else "accuracy"
    return Entry(
        labels, f"{level}{cls}{part}{row}{role}", StageOutput("a", {(name, k): v for k, v in metrics.items()})
    )


def view(level_settings: InterplaySettings, entries: list[Entry]) -> ViewInput:
    return ViewInput(None, "smoke", level_settings, entries)


def unseen_entry(level: str, cls: int, part: str, row: str, **rates: float) -> Entry:
    """An mia entry with the SVC's rates on the target and, lower-case-prefixed, on unseen samples."""
    metrics = {("svc_rate", k): v for k, v in rates.items() if not k.startswith("u_")}
    metrics |= {("svc_unseen_rate", k[2:]): v for k, v in rates.items() if k.startswith("u_")}
    labels = {"protection": "ops", "level": level, "cls": cls, "part": part, "row": row, "role": "mia"}
    return Entry(labels, f"{level}{cls}{part}{row}mia", StageOutput("a", metrics))


def class_entries(ft_dtr: float = 90.0) -> list[Entry]:
    accuracy = {"Before": dict(Du=100.0, Duc=60.0, Dut=50.0, Dtr=95.0),
                "RT": dict(Du=0.0, Duc=0.0, Dut=0.0, Dtr=96.0),
                "FT_small": dict(Du=10.0, Duc=5.0, Dut=4.0, Dtr=ft_dtr)}  # fmt: skip
    mia = {"Before": (0.6, 0.50, 0.30), "RT": (0.0, 0.60, 0.20), "FT_small": (0.05, 0.70, 0.25)}
    entries = [entry("class", 0, "Du", row, "accuracy" if row == "Before" else "unlearn", **values)
               for row, values in accuracy.items()]  # fmt: skip
    entries += [entry("class", 0, "Du", row, "mia", correctness=c, probability=p, entropy=e)
                for row, (c, p, e) in mia.items()]  # fmt: skip
    return entries


def test_class_tables_have_the_paper_layout_values_and_mia_rules():
    level = settings("class", [0, 4])
    [table] = VIEWS.get("interplay-table")(view(level, class_entries()))
    assert table.title.startswith("Table 17 (OPS)")
    assert table.header == ["Method", "C0 Du", "C0 Duc", "C0 Dut", "C0 Dtr", "C4 Dc", "C4 Dct", "C4 Dtr"]
    assert [r[0] for r in table.rows] == ["RT", "FT_small", "Before"]
    assert table.rows[0][4] == "96.00 (97.30)"  # Table 17, RT, class 0, Dtr
    assert table.rows[0][5] == "– (0.00)"  # class 4 not run: the paper's value alone
    [mia] = VIEWS.get("mia-table")(view(level, class_entries()))
    assert mia.title.startswith("Table 25 (OPS)") and mia.header[1:4] == ["C0 corr", "C0 prob", "C0 entro"]
    ft = mia.rows[1]
    # prob 0.70 is above Before (0.50) and RT (0.60): arrow; corr 0.05 above RT only, entro above Before only
    assert ft[2].startswith("0.7000↑ (") and ft[1].startswith("0.0500 (") and ft[3].startswith("0.2500 (")
    assert mia.rows[0][2] == "0.6000 (0.5982)"  # the paper's Table 25 RT prob, class 0
    # a severely damaged model (Dtr below 1.5 x chance, 10 classes) is omitted
    [damaged] = VIEWS.get("mia-table")(view(level, class_entries(ft_dtr=14.0)))
    assert all(c.startswith("– (") for c in damaged.rows[1][1:4])
    gaps = prob_gaps(Results.of(class_entries(), "class"), level, "ops")
    assert gaps["FT_small"][0] == pytest.approx(0.10) and gaps["FT_small"][1] is None
    assert prob_gaps(Results.of(class_entries(14.0), "class"), level, "ops")["FT_small"][0] is None
    assert prob_gaps(Results.of(class_entries(16.0), "class"), level, "ops")["FT_small"][0] is not None
    figure = VIEWS.get("mia-gap")(view(level, class_entries()))
    assert isinstance(figure, FigureView) and figure.png.startswith(b"\x89PNG")


def test_mia_table_shows_the_unseen_rate_beside_each_target_rate_and_names_the_shadow_data():
    level = settings("class", [0])
    entries = [e for e in class_entries() if e.labels["role"] != "mia" or e.labels["row"] != "FT_small"]
    entries.append(unseen_entry("class", 0, "Du", "FT_small", correctness=0.05, probability=0.7, entropy=0.25,
                                u_correctness=0.5, u_probability=0.125, u_entropy=0.0))  # fmt: skip
    [mia] = VIEWS.get("mia-table")(view(level, entries))
    ft = mia.rows[1]
    assert ft[1].startswith("0.0500 [unseen 0.5000] (") and ft[2].startswith("0.7000↑ [unseen 0.1250] (")
    assert ft[3].startswith("0.2500 [unseen 0.0000] (")
    assert "unseen test images" in mia.caption
    assert "as-trained shadow members, at most 2000 a side" in mia.caption
    official = settings("class", [0], mia={"max_shadow": None, "shadow": "clean"})
    [mia] = VIEWS.get("mia-table")(view(official, entries))
    assert "clean shadow members, official selection" in mia.caption


def test_subset_table_blocks_and_the_ft_arrow_rule():
    level = settings("subset", [1, 5], methods=["rt", "ft", "ga"])
    values = {"Before": 80.0, "RT": 50.0, "FT_small": 85.0, "GA_small": 90.0}
    entries = [entry("subset", 1, part, row, "accuracy" if row == "Before" else "unlearn",
                     Du=1.0, Duc=duc, Dc=2.0, Dt=70.0)
               for part in ("Du", "Dc") for row, duc in values.items()]  # fmt: skip
    [table] = VIEWS.get("interplay-table")(view(level, entries))
    assert table.title.startswith("Table 13 (OPS)")
    assert table.header[:6] == ["Forgetting set", "Method", "C1 Du", "C1 Duc", "C1 Dc", "C1 Dt"]
    rows = {(r[0], r[1]): r[2:] for r in table.rows}
    assert list(rows) == [(b, m) for b in ("Du", "Dc") for m in ("RT", "FT_small", "GA_small")] + [
        ("-", "Before")
    ]
    assert rows[("Du", "RT")][3] == "70.00 (76.59)"  # Table 13, class 1, Du forgotten, RT, Dt
    assert rows[("Du", "FT_small")][1].startswith("85.00↑")  # FT above Before's Duc
    assert not rows[("Dc", "FT_small")][1].startswith("85.00↑")  # never in the Dc-forget block
    assert not rows[("Du", "GA_small")][1].startswith("90.00↑")  # nor on GA
    assert rows[("Du", "FT_small")][5] == "– (70.49↑)"  # class 5 not run; the paper's value and arrow


def test_synergy_rule_on_hand_made_and_paper_values():
    assert (
        symbol({"small": ["success", "success", "fail"], "large": ["success", "success", "success"]}) == "✓"
    )
    assert symbol({"small": ["success", "success", "fail"], "large": ["fail", "fail", "success"]}) == "△"
    assert symbol({"small": ["counter", "counter", "fail"], "large": ["fail", "fail", "fail"]}) == "▲"
    assert symbol({"small": ["fail", "counter", "success"], "large": []}) == "✗"
    assert symbol({"small": ["missing", "missing"]}) == "–"  # nothing measured (e.g. a level not run)
    table = {("RT", "Du"): 0.0, ("RT", "utility"): 96.0, ("Before", "Du"): 100.0, ("X", "utility"): 95.0}

    def lookup(protection, cls, row, quantity):
        return table.get((row, quantity), {"X": 3.0}.get(row))

    assert judge(lookup, "ops", 0, "X", "Du", 10.0) == "success"  # 3 <= 0 + 5, utility within 5 of RT
    table[("X", "utility")] = 14.0  # damaged (below 1.5 x 10%)
    assert judge(lookup, "ops", 0, "X", "Du", 10.0) == "fail"
    # the rule on the paper's Table 17 / 25 (OPS, class level, protected classes 0-3)
    level = settings("class", [0, 1, 2, 3], methods=["rt", "ft", "if", "ga"], scales=["small", "large"])
    assert cell(paper_lookup("class"), level, "ops", "ft", "Duc") == "✓"  # FT: Duc 0 like RT, Dtr kept
    assert cell(paper_lookup("class"), level, "ops", "ga", "Du") == "✗"  # GA leaves Du near 100%


@pytest.mark.slow
def test_interplay_specs_run_at_smoke_scale_and_table5_reuses_them(tmp_path):
    common = ["--scale", "smoke", "--results", str(tmp_path / "r"), "--artifacts", str(tmp_path / "a"),
              "--device", "cpu"]  # fmt: skip
    for name in ("interplay-class", "interplay-subset"):
        result = CliRunner().invoke(app, ["reproduce", name, *common, "--no-report"])
        assert result.exit_code == 0 and " 0 failed" in result.output, result.output
    result = CliRunner().invoke(app, ["reproduce", "table5", *common])
    assert result.exit_code == 0 and "0 stages run" in result.output, result.output
    html = (tmp_path / "r" / "report.html").read_text()
    for title in ("Table 17 (OPS)", "Table 25 (OPS)", "Table 13 (OPS)", "Table 24 (OPS)", "Table 5: synergy"):
        assert title in html
    assert html.count("data:image/png;base64,") == 2  # Figures 5-8, class and subset level
    assert load_spec("table5").settings("paper").blocks()[0].protections == ["ue-s", "tue", "pue", "ops"]


def test_cells_over_seeds_show_mean_spread_interval_and_sample_sizes():
    """Three seeds of one cell: the mean, ±std, the 95% t-interval and '3 seeds'; one seed with
    its evaluation size: the Wilson interval and n."""
    level = settings("class", [0])
    entries = []
    for seed, (du, rate) in enumerate([(10.0, 0.2), (20.0, 0.3), (30.0, 0.4)]):
        for row in ("RT", "FT_small", "Before"):
            unlearn = entry(
                "class", 0, "Du", row, "accuracy" if row == "Before" else "unlearn", Du=du, Duc=50.0
            )
            unlearn.labels["seed"] = seed
            mia = entry("class", 0, "Du", row, "mia", correctness=rate, probability=rate, entropy=rate)
            mia.labels["seed"] = seed
            entries += [unlearn, mia]
    [table] = VIEWS.get("interplay-table")(view(level, entries))
    assert table.rows[1][1].startswith("20.00 ±10.00 [") and "3 seeds" in table.rows[1][1]
    [mia] = VIEWS.get("mia-table")(view(level, entries))
    assert mia.rows[1][1].startswith("0.3000 ±0.1000 [") and "3 seeds" in mia.rows[1][1]
    one = entry("class", 0, "Du", "RT", "unlearn", Du=70.0)
    one.output.metrics[("n", "Du")] = 10
    [single] = VIEWS.get("interplay-table")(view(level, [one]))
    assert single.rows[0][1].startswith("70.00 [39.68, 89.22] n=10")
