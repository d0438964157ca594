"""The dememo command line: a thin layer over the library.

Each stage registers its commands on the shared ``app`` in a module of its own.
"""

from __future__ import annotations

import sys

from rich.console import Console

from dememo.cli import (  # noqa: F401  (registers the commands)
    audit,
    experiments,
    inspect,
    llm,
    protection,
    training,
    unlearning,
)
from dememo.cli.common import app
from dememo.errors import DememoError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: report dememo's own errors as one line and exit with status 2."""
    try:
        app()
    except DememoError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}")
        sys.exit(2)
