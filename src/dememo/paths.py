"""Where data, caches and artifacts live.

Every path a user gives (an environment variable or a command-line path) goes through
``user_path``, so ``~`` means the home folder everywhere, also where no shell expanded
it (``DEMEMO_CACHE='~/c'``, ``--export=~/release``), never a literal folder named ``~``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dememo.errors import ConfigError


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


def check_writable(path: str | Path, *, is_file: bool = False, what: str | None = None) -> Path:
    """Fail now, not after hours of work, when ``path`` cannot be written: a folder (made if
    missing) where a file can be created, or with ``is_file`` a file path that is not a folder
    and whose folder is writable. ``what`` names the option or variable in the message.
    The one check every output location (--artifacts, --results, --out, --csv, --export,
    DEMEMO_CACHE, ...) goes through; returns ``path`` with ``~`` expanded."""
    path = user_path(path)
    label = f"{what} {path}" if what else str(path)
    if is_file and path.is_dir():
        raise ConfigError(f"{label}: is a directory; expected a file path")
    if not is_file and path.exists() and not path.is_dir():
        raise ConfigError(f"{label}: is a file; expected a folder")
    folder = path.parent if is_file else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ConfigError(f"{label}: {folder} is not writable ({error.strerror or error})") from None
    return path
