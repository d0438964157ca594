"""Views: one file per family of paper artefacts (tables and figures) on the protocol in base."""

from dememo.experiments.views import (  # noqa: F401  (registers the views)
    findings,
    interplay,
    lifecycle,
    llm,
    recovery,
    synergy,
    table3,
)
from dememo.experiments.views.base import (
    VIEWS,
    FigureView,
    TableView,
    View,
    ViewInput,
    as_list,
    markdown_rows,
    percent,
    png,
    table_markdown,
)

__all__ = ["VIEWS", "FigureView", "TableView", "View", "ViewInput", "as_list",
           "markdown_rows", "percent", "png", "table_markdown"]  # fmt: skip
