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
