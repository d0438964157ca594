"""Shared fixtures: an isolated cache, real data locations, tiny on-disk datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dememo.data import load_dataset

SHARED_DATA = Path(
    os.environ.get("DEMEMO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
CIFAR_ARCHIVE = SHARED_DATA / "cifar10-jpeg.tar.gz"


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every test run decodes into its own cache, never the user's."""
    cache = tmp_path_factory.mktemp("dememo-cache")
    old = os.environ.get("DEMEMO_CACHE")
    os.environ["DEMEMO_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("DEMEMO_CACHE", None)
    else:
        os.environ["DEMEMO_CACHE"] = old


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def cifar10():
    if not CIFAR_ARCHIVE.is_file():
        pytest.skip(f"real CIFAR-10 not available at {CIFAR_ARCHIVE}")
    return load_dataset("cifar10", SHARED_DATA)
