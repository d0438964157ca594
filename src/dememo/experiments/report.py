"""Reports of a results directory: every reproduction's views (tables beside the paper's
values, figures), failures and provenance, as one self-contained HTML file (figures
embedded as PNG) or as Markdown with the figures as PNG files beside it.

A report opens with a provenance box (the git commit and dememo version it was made from and
each reproduction's: commit, dirty flag, machine, resolved settings, precisions, seeds, wall
and stage time), then the summary (every reproduction's ``findings`` view, when its spec has
one; a marked placeholder otherwise), then a table of contents and one section per
reproduction.

Stage time is each stage's own run time (``runs.seconds``, measured by the executor). Results
written before issue 17 recorded a stage's start when it was queued, so a failed stage (and
older versions, every stage) counted its queue wait: with the local backend (one stage at a
time) a stage's time is therefore capped by the gap since the previous stage finished, and
only stages that finished during the reproduction count as its stage time (the others were
reused from earlier runs).
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import dememo
from dememo.atomic import atomic_write_bytes, atomic_write_text
from dememo.errors import ConfigError
from dememo.experiments.provenance import describe_machine, git_commit
from dememo.experiments.reproduce import stored_entries
from dememo.experiments.results import ResultsDB, RunRecord
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
.provenance { border: 1px solid #99a; background: #f6f6fb; padding: 0.5em 1em; font-size: 0.9em; }
.summary { border: 2px solid #668; padding: 0.5em 1em; } pre { white-space: pre-wrap; font-size: 0.8em; }
"""

FINDINGS = "findings"  # the view whose tables/figures open the report (the summary of verdicts)
SUMMARY_PLACEHOLDER = (
    "Summary of verdicts: no reproduction here has a 'findings' view; when one does, its verdicts "
    "appear in this place."
)


@dataclass
class Section:
    """One reproduction (spec at a scale) as rendered content."""

    title: str
    notes: list[str]
    views: list[TableView | FigureView]
    failed: dict[str, str] = field(default_factory=dict)  # stage key -> error
    missing: int = 0
    provenance: str = ""
    anchor: str = ""
    details: list[str] = field(default_factory=list)  # provenance lines for the box at the top
    settings: str = ""  # the resolved settings of the scale, as JSON
    findings: list[TableView | FigureView] = field(default_factory=list)


def stage_seconds(runs: list[RunRecord], backend: str) -> dict[str, float]:
    """Each run's own time: ``seconds``, capped (local backend: one stage at a time) by the gap
    since the previous run finished, which undoes a queue-inclusive start of older results."""
    own, previous = {}, None
    for run in sorted(runs, key=lambda r: (r.finished is None, r.finished or 0.0)):
        seconds = run.seconds
        if seconds is not None and backend == "local" and previous is not None and run.finished is not None:
            seconds = min(seconds, max(0.0, run.finished - previous))
        if run.finished is not None:
            previous = run.finished
        if seconds is not None:
            own[run.key] = seconds
    return own


def _seeds(value: object, path: str = "") -> list[str]:
    """'path=value' for every key named seed/seeds in the settings."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in ("seed", "seeds") and not isinstance(item, dict):
                found.append(f"{where}={item}")
            else:
                found += _seeds(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _seeds(item, f"{path}[{index}]")
    return found


def _when(stamp: float | None) -> str:
    return "–" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def _section(db: ResultsDB, record: dict, number: int) -> Section:
    spec = Spec.model_validate(record["definition"])
    scale = record["scale"]
    entries = stored_entries(db, spec.name, scale)
    settings = spec.settings(scale)
    view_input = ViewInput(spec, scale, settings, entries)
    kind = "a dememo extension (no paper numbers)" if spec.paper.extension else spec.paper.artefact
    notes = [f"Reproduces {kind} of {PAPER_CITATION}, {spec.paper.section}. {spec.paper.note}"]
    if getattr(settings, "notes", ""):
        notes.append(f"Scale notes: {settings.notes}")
    all_runs = db.runs()
    keys = {e.key for e in entries}
    runs = {r.key: r for r in all_runs if r.key in keys}
    own = stage_seconds(all_runs, record["backend"])
    begun, ended = record["started"], record["finished"]
    ran_here = [r for r in runs.values() if r.finished is not None and r.finished >= begun
                and (ended is None or r.finished <= ended + 1)]  # fmt: skip
    seconds = sum(own.get(r.key, 0.0) for r in ran_here)
    devices = sorted({r.device for r in runs.values() if r.device})
    precisions = sorted({r.precision for r in runs.values() if r.precision})
    wall = f"{ended - begun:.0f} s" if ended is not None else "unfinished"
    timing = (f"{len(runs)} stages ({len(ran_here)} run in this reproduction, {len(runs) - len(ran_here)} "
              f"reused); {seconds:.0f} s of stage time (each stage's own run time); wall time {wall} "
              f"({_when(begun)} to {_when(ended)})")  # fmt: skip
    recorded = db.provenance(spec.name, scale) or {}
    dirty = recorded.get("dirty")
    commit = recorded.get("commit", "not recorded (results written before issue 17)")
    machine = describe_machine(recorded["machine"]) if "machine" in recorded else "not recorded"
    settings_json = settings.model_dump(mode="json")
    details = [
        f"commit {commit}{' (uncommitted changes)' if dirty else ''}, dememo {recorded.get('dememo', '?')}",
        f"machine: {machine}; devices recorded: {', '.join(devices) or '?'}",
        f"precision (runs.precision): {', '.join(precisions) or 'not recorded'}",
        f"seeds: {', '.join(_seeds(settings_json)) or 'none in the settings (defaults)'}",
        timing + f"; backend {record['backend']}; status {record['status']}",
    ]
    names = [FINDINGS, *(n for n in spec.views if n != FINDINGS)] if FINDINGS in spec.views else spec.views
    views, findings = [], []
    for name in names:
        (findings if name == FINDINGS else views).extend(as_list(VIEWS.get(name)(view_input)))
    return Section(
        f"{spec.title} ({spec.name}, {scale} scale)",
        notes,
        views,
        {e.key: e.error for e in entries if e.error},
        len({e.key for e in entries if e.output is None and not e.error}),
        f"{timing} on {', '.join(devices) or '?'}; backend {record['backend']}; status {record['status']}.",
        anchor=f"section-{number}",
        details=details,
        settings=json.dumps(settings_json, indent=1, sort_keys=True),
        findings=findings,
    )


def report_commit() -> str:
    """The commit (and dirty flag) of the source tree this report is made from."""
    info = git_commit()
    return f"{info['commit']}{' (uncommitted changes)' if info['dirty'] else ''}"


def sections(results: Path) -> list[Section]:
    db = ResultsDB.in_directory(results, create=False)
    try:
        records = db.reproductions()
        if not records:
            raise ConfigError(f"{results}: no reproductions recorded yet")
        return [_section(db, record, number) for number, record in enumerate(records, 1)]
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


def _html_top(all_sections: list[Section]) -> list[str]:
    box = [f"<p><b>Report made from</b> commit {html.escape(report_commit())}, dememo "
           f"{html.escape(dememo.__version__)}, {html.escape(_when(time.time()))}.</p>"]  # fmt: skip
    for section in all_sections:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in section.details)
        box.append(f"<p><b>{html.escape(section.title)}</b></p><ul>{items}</ul><details><summary>resolved "
                   f"settings</summary><pre>{html.escape(section.settings)}</pre></details>")  # fmt: skip
    parts = [f'<div class="provenance" id="provenance"><h2>Provenance</h2>{"".join(box)}</div>']
    findings = [view for section in all_sections for view in section.findings]
    summary = (
        "".join(_html_view(v) for v in findings) or f'<p class="note">{html.escape(SUMMARY_PLACEHOLDER)}</p>'
    )
    parts.append(f'<div class="summary" id="summary"><h2>Summary</h2>{summary}</div>')
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in all_sections)
    parts.append(f'<h2>Contents</h2><ul><li><a href="#provenance">Provenance</a></li>'
                 f'<li><a href="#summary">Summary</a></li>{toc}</ul>')  # fmt: skip
    return parts


def render_report(results: Path) -> str:
    """The whole report as one self-contained HTML page."""
    all_sections = sections(results)
    parts = _html_top(all_sections)
    for section in all_sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
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


def _slug(title: str) -> str:
    """GitHub's Markdown heading anchor."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def write_markdown(results: Path, out: Path) -> Path:
    """The report as Markdown in ``out``; figures as ``<out stem>-<n>.png`` beside it."""
    all_sections = sections(results)
    made = f"Report made from commit {report_commit()}, dememo {dememo.__version__}, {_when(time.time())}."
    lines = ["## Provenance", "", made, ""]
    for section in all_sections:
        lines += [f"**{section.title}**", "", *[f"- {line}" for line in section.details], "",
                  "<details><summary>resolved settings</summary>", "", "```json", section.settings, "```", "",
                  "</details>", ""]  # fmt: skip
    figures = 0

    def view_lines(view: TableView | FigureView) -> list[str]:
        nonlocal figures
        found = [f"### {view.title}", ""]
        if isinstance(view, FigureView):
            figures += 1
            name = f"{out.stem}-{figures}.png"
            atomic_write_bytes(out.parent / name, view.png)
            found.append(f"![{view.title}]({name})")
        else:
            found += markdown_rows(view)
        return found + ["", view.caption, ""]

    lines += ["## Summary", ""]
    findings = [view for section in all_sections for view in section.findings]
    lines += [line for view in findings for line in view_lines(view)] or [SUMMARY_PLACEHOLDER, ""]
    lines += ["## Contents", "", "- [Provenance](#provenance)", "- [Summary](#summary)",
              *[f"- [{s.title}](#{_slug(s.title)})" for s in all_sections], ""]  # fmt: skip
    for section in all_sections:
        lines += [f"## {section.title}", "", *[f"{note}\n" for note in section.notes]]
        for view in section.views:
            lines += view_lines(view)
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
