"""Reports of a results directory: every reproduction's views (tables beside the paper's
values, figures), failures and provenance, as one self-contained HTML file (figures
embedded as PNG) or as Markdown with the figures as PNG files beside it."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

from dememo.atomic import atomic_write_bytes, atomic_write_text
from dememo.errors import ConfigError
from dememo.experiments.reproduce import stored_entries
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import Spec
from dememo.experiments.views.base import VIEWS, FigureView, TableView, ViewInput, as_list, markdown_rows
from dememo.reference import PAPER_CITATION

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th { background: #eef; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: bottom; font-size: 0.85em; color: #555; text-align: left; padding-top: 0.4em; }
.failed { color: #b00; } .note { color: #555; font-size: 0.9em; } img { max-width: 100%; }
"""


@dataclass
class Section:
    """One reproduction (spec at a scale) as rendered content."""

    title: str
    notes: list[str]
    views: list[TableView | FigureView]
    failed: dict[str, str] = field(default_factory=dict)  # stage key -> error
    missing: int = 0
    provenance: str = ""


def _section(db: ResultsDB, record: dict) -> Section:
    spec = Spec.model_validate(record["definition"])
    scale = record["scale"]
    entries = stored_entries(db, spec.name, scale)
    settings = spec.settings(scale)
    view_input = ViewInput(spec, scale, settings, entries)
    kind = "a dememo extension (no paper numbers)" if spec.paper.extension else spec.paper.artefact
    notes = [f"Reproduces {kind} of {PAPER_CITATION}, {spec.paper.section}. {spec.paper.note}"]
    if getattr(settings, "notes", ""):
        notes.append(f"Scale notes: {settings.notes}")
    runs = {r.key: r for r in db.runs(list({e.key for e in entries}))}
    seconds = sum(r.seconds or 0 for r in runs.values())
    devices = sorted({r.device for r in runs.values() if r.device})
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record["started"]))
    return Section(
        f"{spec.title} ({spec.name}, {scale} scale)",
        notes,
        [view for name in spec.views for view in as_list(VIEWS.get(name)(view_input))],
        {e.key: e.error for e in entries if e.error},
        len({e.key for e in entries if e.output is None and not e.error}),
        f"{len(runs)} stages, {seconds:.0f} s of stage time on {', '.join(devices) or '?'}; "
        f"backend {record['backend']}; started {started}; status {record['status']}.",
    )


def sections(results: Path) -> list[Section]:
    db = ResultsDB.in_directory(results, create=False)
    try:
        records = db.reproductions()
        if not records:
            raise ConfigError(f"{results}: no reproductions recorded yet")
        return [_section(db, record) for record in records]
    finally:
        db.close()


def _html_view(view: TableView | FigureView) -> str:
    title = f"<h3>{html.escape(view.title)}</h3>"
    if isinstance(view, FigureView):
        data = base64.b64encode(view.png).decode()
        return (f"{title}<figure><img alt=\"{html.escape(view.title)}\" src=\"data:image/png;base64,{data}\">"
                f"<figcaption class=\"note\">{html.escape(view.caption)}</figcaption></figure>")  # fmt: skip
    head = "".join(f"<th>{html.escape(h)}</th>" for h in view.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in view.rows)
    return (f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"<caption>{html.escape(view.caption)}</caption></table>")  # fmt: skip


def render_report(results: Path) -> str:
    """The whole report as one self-contained HTML page."""
    parts = []
    for section in sections(results):
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
        parts += [_html_view(view) for view in section.views]
        if section.failed:
            items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in section.failed.items())
            parts.append(f'<h3 class="failed">Failed stages</h3><ul class="failed">{items}</ul>')
        if section.missing:
            parts.append(f'<p class="failed">{section.missing} planned stage(s) have no result yet.</p>')
        parts.append(f'<p class="note">{html.escape(section.provenance)}</p><hr>')
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dememo report</title>"
            f"<style>{STYLE}</style></head><body><h1>dememo report: {html.escape(str(results))}</h1>"
            + "\n".join(parts) + "</body></html>")  # fmt: skip


def write_markdown(results: Path, out: Path) -> Path:
    """The report as Markdown in ``out``; figures as ``<out stem>-<n>.png`` beside it."""
    lines = []
    figures = 0
    for section in sections(results):
        lines += [f"## {section.title}", "", *[f"{note}\n" for note in section.notes]]
        for view in section.views:
            lines += [f"### {view.title}", ""]
            if isinstance(view, FigureView):
                figures += 1
                name = f"{out.stem}-{figures}.png"
                atomic_write_bytes(out.parent / name, view.png)
                lines.append(f"![{view.title}]({name})")
            else:
                lines += markdown_rows(view)
            lines += ["", view.caption, ""]
        if section.failed:
            lines += ["Failed stages:", "", *[f"- {k}: {v}" for k, v in section.failed.items()], ""]
        if section.missing:
            lines += [f"{section.missing} planned stage(s) have no result yet.", ""]
        lines += [section.provenance, ""]
    atomic_write_text(out, "\n".join(lines))
    return out


def write_report(results: Path, out: Path | None = None) -> Path:
    """Render the report of ``results`` into ``out`` (default: <results>/report.html)."""
    out = out or Path(results) / "report.html"
    atomic_write_text(out, render_report(Path(results)))
    return out
