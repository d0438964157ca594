"""Where data, caches and artifacts live."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Decoded-dataset cache: $DEMEMO_CACHE, else ~/.cache/dememo."""
    return Path(os.environ.get("DEMEMO_CACHE", Path.home() / ".cache" / "dememo"))


def data_root(explicit: str | Path | None = None) -> Path:
    """Raw data: the explicit option, else $DEMEMO_DATA, else <cache>/data."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if "DEMEMO_DATA" in os.environ:
        return Path(os.environ["DEMEMO_DATA"]).expanduser()
    return cache_root() / "data"


def artifact_root(explicit: str | Path | None = None) -> Path:
    """Artifact store: the explicit option, else $DEMEMO_ARTIFACTS, else ./artifacts."""
    if explicit is not None:
        return Path(explicit).expanduser()
    return Path(os.environ.get("DEMEMO_ARTIFACTS", "artifacts"))
