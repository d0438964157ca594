"""What every command shares: the typer app, the console, common options and their checks.

Every option is validated before any work starts: typer checks ranges and choices,
and commands call ``check_writable`` on their output locations first, so a bad
option never surfaces hours later as a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from dememo.errors import ConfigError
from dememo.paths import check_writable as check_writable  # re-exported: every command's output check
from dememo.paths import user_path
from dememo.runtime import resolve_device


def expand_paths(value: object) -> object:
    """``value`` with ``~`` expanded when it is a path or a list of paths (see ``user_path``)."""
    if isinstance(value, Path):
        return user_path(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, Path) for v in value):
        return type(value)(user_path(v) for v in value)
    return value


class DememoTyper(typer.Typer):
    """A Typer app whose commands get every path argument and option with ``~`` expanded
    (one place for all commands, whatever the shell did)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def expanded(*positional: Any, **named: Any) -> Any:
                return function(*map(expand_paths, positional),
                                **{key: expand_paths(value) for key, value in named.items()})  # fmt: skip

            register(expanded)
            return function

        return decorator


app = DememoTyper(
    help="dememo: make data unlearnable, unlearn it from models, and audit how deep forgetting goes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

PRECISIONS = ("auto", "fp32", "bf16")


def _precision(value: str) -> str:
    if value not in PRECISIONS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(PRECISIONS)}")
    return value


def _device(value: str) -> str:
    try:
        resolve_device(value)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None
    return value


DataRoot = Annotated[
    Path | None,
    typer.Option("--data-root", envvar="DEMEMO_DATA", help="Folder (or archive) holding raw data."),
]
Artifacts = Annotated[
    Path | None,
    typer.Option("--artifacts", envvar="DEMEMO_ARTIFACTS", help="Artifact store folder [./artifacts]."),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N].", callback=_device)]
PrecisionOpt = Annotated[
    str, typer.Option(help="auto (bf16 where it is fast), fp32 or bf16.", callback=_precision)
]
Download = Annotated[bool, typer.Option(help="Download with torchvision when missing (needs internet).")]
Seed = Annotated[int, typer.Option(min=0, help="Seed for initialization, shuffling, augmentation.")]
Epochs = Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")]
TrainPerClass = Annotated[int | None, typer.Option(min=1, help="Use the first N training images per class.")]
TestPerClass = Annotated[
    int | None, typer.Option(min=1, help="Evaluate on the first N test images per class.")
]


def check_choice(value: str | None, choices: tuple[str, ...], option: str) -> str | None:
    """``value`` when it is one of ``choices`` (exactly, case included) or None; else a ConfigError
    listing the valid values (a filter with a typo must not print an empty table)."""
    if value is not None and value not in choices:
        raise ConfigError(f"{option} {value!r}: expected one of {', '.join(choices)}")
    return value


def parse_options(
    pairs: list[str], default_method: str | None = None, methods: list[str] | None = None
) -> dict[str, dict[str, object]]:
    """'method.key=value' (or 'key=value' for ``default_method``) -> {method: {key: value}}.

    With ``methods``, a method name outside it (a typo like ``opz.pixels=3``) is an error.
    """
    parsed: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        method, dot, field = key.rpartition(".")
        if not sep or not field or (not dot and default_method is None):
            raise ConfigError(f"--option {pair!r}: expected method.key=value")
        method = method if dot else default_method
        if methods is not None and method not in methods:
            raise ConfigError(f"--option {pair!r}: method {method!r} is not one of {', '.join(methods)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed.setdefault(method, {})[field] = value
    return parsed


OptionPairs = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Method option as method.key=value (JSON values), repeatable."),
]
