"""What every command shares: the typer app, the console and common options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dememo.errors import ConfigError

app = typer.Typer(
    help="dememo: make data unlearnable, unlearn it from models, and audit how deep forgetting goes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

DataRoot = Annotated[
    Path | None,
    typer.Option("--data-root", envvar="DEMEMO_DATA", help="Folder (or archive) holding raw data."),
]
Artifacts = Annotated[
    Path | None,
    typer.Option("--artifacts", envvar="DEMEMO_ARTIFACTS", help="Artifact store folder [./artifacts]."),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")]
PrecisionOpt = Annotated[str, typer.Option(help="auto (bf16 where it is fast), fp32 or bf16.")]
Download = Annotated[bool, typer.Option(help="Download with torchvision when missing (needs internet).")]


def parse_options(pairs: list[str], default_method: str | None = None) -> dict[str, dict[str, object]]:
    """'method.key=value' (or 'key=value' for ``default_method``) -> {method: {key: value}}."""
    parsed: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        method, dot, field = key.rpartition(".")
        if not sep or not field or (not dot and default_method is None):
            raise ConfigError(f"--option {pair!r}: expected method.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed.setdefault(method if dot else default_method, {})[field] = value
    return parsed


OptionPairs = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Method option as method.key=value (JSON values), repeatable."),
]
