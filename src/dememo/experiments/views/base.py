"""The view protocol: how a reproduction's results are shown in the report (tables and figures).

A view is a function of the spec, the scale's settings and the entries (planned
stages with results); it returns a ``TableView``, a ``FigureView`` or a list of them. Specs name
their views; a new paper artefact adds a view to its family's module in this package,
registered in VIEWS.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from dememo.experiments.studies.base import Entry
from dememo.registry import Registry


@dataclass(frozen=True)
class TableView:
    title: str
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class FigureView:
    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class ViewInput:
    spec: Any  # dememo.experiments.spec.Spec
    scale: str
    settings: Any
    entries: list[Entry]


View = Callable[[ViewInput], TableView | FigureView | list[TableView | FigureView]]
VIEWS: Registry[View] = Registry("view")


def as_list(result: TableView | FigureView | list[TableView | FigureView]) -> list[TableView | FigureView]:
    """A view's tables and figures (a view may return several, e.g. one table per protection)."""
    return result if isinstance(result, list) else [result]


def markdown_rows(view: TableView) -> list[str]:
    """The table's lines in Markdown (header, rule, rows; '|' in cells escaped)."""
    rows = [view.header, ["---"] * len(view.header), *view.rows]
    return ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def table_markdown(view: TableView) -> str:
    """A table view as Markdown: title, the table, its caption."""
    lines = [f"**{view.title}**", "", *markdown_rows(view)]
    return "\n".join(lines + (["", view.caption] if view.caption else [])) + "\n"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()
