"""One self-contained HTML report of a results directory: every reproduction's views
(tables beside the paper's values, figures as embedded PNG), failures and provenance."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from dememo.atomic import atomic_write_text
from dememo.errors import ConfigError
from dememo.experiments.reproduce import stored_entries
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import Spec
from dememo.experiments.views import PAPER_CITATION, VIEWS, FigureView, TableView, ViewInput, as_list

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th { background: #eef; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: bottom; font-size: 0.85em; color: #555; text-align: left; padding-top: 0.4em; }
.failed { color: #b00; } .note { color: #555; font-size: 0.9em; } img { max-width: 100%; }
"""


def _table(view: TableView) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in view.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in view.rows)
    return (f"<h3>{html.escape(view.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"<caption>{html.escape(view.caption)}</caption></table>")  # fmt: skip


def _figure(view: FigureView) -> str:
    data = base64.b64encode(view.png).decode()
    return (f"<h3>{html.escape(view.title)}</h3><figure><img alt=\"{html.escape(view.title)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption class=\"note\">{html.escape(view.caption)}"
            "</figcaption></figure>")  # fmt: skip


def _section(db: ResultsDB, record: dict) -> str:
    spec = Spec.model_validate(record["definition"])
    scale = record["scale"]
    entries = stored_entries(db, spec.name, scale)
    settings = spec.settings(scale)
    view_input = ViewInput(spec, scale, settings, entries)
    parts = [f"<h2>{html.escape(spec.title)} <small>({html.escape(spec.name)}, {scale} scale)</small></h2>"]
    kind = "a dememo extension (no paper numbers)" if spec.paper.extension else spec.paper.artefact
    parts.append(f"<p class=\"note\">Reproduces {html.escape(kind)} of {html.escape(PAPER_CITATION)}, "
                 f"{html.escape(spec.paper.section)}. {html.escape(spec.paper.note)}</p>")  # fmt: skip
    if getattr(settings, "notes", ""):
        parts.append(f'<p class="note">Scale notes: {html.escape(settings.notes)}</p>')
    for name in spec.views:
        for view in as_list(VIEWS.get(name)(view_input)):
            parts.append(_table(view) if isinstance(view, TableView) else _figure(view))
    failed = {e.key: e.error for e in entries if e.error}
    missing = {e.key for e in entries if e.output is None and not e.error}
    if failed:
        items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in failed.items())
        parts.append(f'<h3 class="failed">Failed stages</h3><ul class="failed">{items}</ul>')
    if missing:
        parts.append(f'<p class="failed">{len(missing)} planned stage(s) have no result yet.</p>')
    runs = {r.key: r for r in db.runs(list({e.key for e in entries}))}
    seconds = sum(r.seconds or 0 for r in runs.values())
    devices = sorted({r.device for r in runs.values() if r.device})
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record["started"]))
    parts.append(f"<p class=\"note\">{len(runs)} stages, {seconds:.0f} s of stage time on "
                 f"{html.escape(', '.join(devices) or '?')}; backend {html.escape(record['backend'])}; "
                 f"started {started}; status {html.escape(record['status'])}.</p>")  # fmt: skip
    return "\n".join(parts)


def render_report(results: Path) -> str:
    db = ResultsDB.in_directory(results, create=False)
    try:
        records = db.reproductions()
        if not records:
            raise ConfigError(f"{results}: no reproductions recorded yet")
        sections = "\n<hr>\n".join(_section(db, record) for record in records)
    finally:
        db.close()
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dememo report</title>"
            f"<style>{STYLE}</style></head><body><h1>dememo report: {html.escape(str(results))}</h1>"
            f"{sections}</body></html>")  # fmt: skip


def write_report(results: Path, out: Path | None = None) -> Path:
    """Render the report of ``results`` into ``out`` (default: <results>/report.html)."""
    out = out or Path(results) / "report.html"
    atomic_write_text(out, render_report(Path(results)))
    return out
