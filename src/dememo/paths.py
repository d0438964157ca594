"""Where data, caches and artifacts live.

Every path a user gives (an environment variable or a command-line path) goes through
``user_path``, so ``~`` means the home folder everywhere, also where no shell expanded
it (``DEMEMO_CACHE='~/c'``, ``--export=~/release``), never a literal folder named ``~``.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_path(value: str | Path) -> Path:
    """A path as the user meant it: ``~`` and ``~user`` expanded."""
    return Path(value).expanduser()


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return user_path(value) if value else None


def cache_root() -> Path:
    """Decoded-dataset cache: $DEMEMO_CACHE, else ~/.cache/dememo."""
    return _env_path("DEMEMO_CACHE") or Path.home() / ".cache" / "dememo"


def data_root(explicit: str | Path | None = None) -> Path:
    """Raw data: the explicit option, else $DEMEMO_DATA, else <cache>/data."""
    if explicit is not None:
        return user_path(explicit)
    return _env_path("DEMEMO_DATA") or cache_root() / "data"


def artifact_root(explicit: str | Path | None = None) -> Path:
    """Artifact store: the explicit option, else $DEMEMO_ARTIFACTS, else ./artifacts."""
    if explicit is not None:
        return user_path(explicit)
    return _env_path("DEMEMO_ARTIFACTS") or Path("artifacts")
