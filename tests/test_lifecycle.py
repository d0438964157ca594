"""The README's main command at smoke scale: the lifecycle spec, its views, the Markdown report."""

from __future__ import annotations

from typer.testing import CliRunner

from dememo.cli import app

runner = CliRunner()


def test_demo_runs_the_lifecycle_and_ends_with_the_report(tmp_path):
    results, artifacts = tmp_path / "results", tmp_path / "artifacts"
    args = ["demo", "--scale", "smoke", "--results", str(results), "--artifacts", str(artifacts)]
    first = runner.invoke(app, args, terminal_width=250)
    assert first.exit_code == 0, first.output
    assert f"HTML report: {results / 'report.html'}" in first.output
    assert "24 stages run, 0 reused, 0 failed" in first.output
    # issue 17: the distance reached beside every eta, and a budget that reaches the radius
    assert "Lifecycle: recovery at every radius" in first.output and "(d 0.1/0.1)" in first.output
    assert "did not reach its radius" not in first.output and "radius not reached" not in first.output
    html = (results / "report.html").read_text()
    assert "Lifecycle: one target from protection to audit" in html and "data:image/png;base64," in html
    for row in ("RT", "IF_small", "FT_small", "GA_small", "Before", "clean"):
        assert f"<td>{row}</td>" in html
    # RT retrained without class 0: it cannot know the forgotten images
    rt_row = html.split("<td>RT</td>")[1].split("</tr>")[0]
    assert rt_row.startswith("<td>0.00</td><td>0.00</td><td>0.00</td>")
    again = runner.invoke(app, args, terminal_width=250)
    assert again.exit_code == 0 and "0 stages run, 24 reused" in again.output
    markdown = runner.invoke(app, ["report", str(results), "--markdown", str(tmp_path / "summary.md")])
    assert markdown.exit_code == 0, markdown.output
    text = (tmp_path / "summary.md").read_text()
    assert (
        "| ops | RT | 0.00 | 0.00 | 0.00 |" in text and "![Lifecycle: recovery curves](summary-1.png)" in text
    )
    assert (tmp_path / "summary-1.png").read_bytes().startswith(b"\x89PNG")


def test_lifecycle_views_average_over_seeds_with_t_intervals():
    """Three seeds: a cell is the seeds' mean with its 95% t-interval (not the last seed's value),
    and a radius counts as reached only where every seed reached it."""
    from dememo.experiments import load_spec
    from dememo.experiments.stages import StageOutput
    from dememo.experiments.studies.base import Entry
    from dememo.experiments.views.base import ViewInput
    from dememo.experiments.views.lifecycle import lifecycle_recovery_table, lifecycle_summary

    spec = load_spec("lifecycle")
    settings = spec.settings("smoke")
    base = {"protection": "ops", "level": "class", "cls": 0, "part": "Du", "row": "Before"}
    entries = []
    for seed, (forget, recovered, distance) in enumerate(
        [(0.10, 0.5, 0.1), (0.20, 0.6, 0.1), (0.30, 0.7, 0.05)]
    ):
        accuracy = {("accuracy", "Du"): 100 * forget, ("accuracy", "Duc"): 100 * forget,
                    ("accuracy", "Dut"): 100 * forget, ("accuracy", "Dtr"): 90.0}  # fmt: skip
        recover = {("recovered_accuracy", "eta=0"): forget, ("recovered_accuracy", "eta=0.1"): recovered,
                   ("distance", "eta=0"): 0.0, ("distance", "eta=0.1"): distance,
                   ("radius_reached", "eta=0"): 1.0,
                   ("radius_reached", "eta=0.1"): float(distance >= 0.1)}  # fmt: skip
        entries.append(
            Entry({**base, "role": "accuracy", "seed": seed}, f"a{seed}", StageOutput("x", accuracy))
        )
        entries.append(
            Entry({**base, "role": "recover", "seed": seed}, f"r{seed}", StageOutput("x", recover))
        )
    view = ViewInput(spec, "smoke", settings, entries)
    summary = lifecycle_summary(view)
    before = next(r for r in summary.rows if r[1] == "Before")
    assert before[2].startswith("20.0 [") and "3 seeds" in summary.caption  # mean of 10/20/30, not 30
    table = lifecycle_recovery_table(view)
    cell = table.rows[0][-1]
    assert cell.startswith("60.0 [") and "*" in cell  # seed 2 stopped at 0.05 of 0.1
    assert "radius not reached" in table.caption
