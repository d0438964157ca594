"""Artifact store: round trip, config hashing, integrity, atomicity."""

from __future__ import annotations

import json

import pytest
import torch

from dememo.atomic import atomic_directory
from dememo.errors import ArtifactError
from dememo.store import ArtifactStore, config_hash


def test_round_trip_keeps_tensors_config_and_metrics(tmp_path):
    store = ArtifactStore(tmp_path)
    config = {"model": "tinycnn", "lr": 0.1, "nested": {"b": 1, "a": 2}}
    tensors = {"w": torch.randn(3, 4), "n": torch.arange(5)}
    saved = store.save("model", config, tensors, {"acc": 0.9}, seed=7)
    loaded = store.load("model", config)
    assert loaded is not None and loaded.path == saved.path
    assert torch.equal(loaded.tensors["w"], tensors["w"]) and torch.equal(loaded.tensors["n"], tensors["n"])
    assert loaded.metrics == {"acc": 0.9}
    manifest = json.loads((saved.path / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["config"] == config
    assert {"torch", "dememo", "python"} <= set(manifest["versions"])
    assert len(manifest["content_sha256"]) == 64


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_missing_artifact_is_none(tmp_path):
    assert ArtifactStore(tmp_path).load("model", {"x": 1}) is None


def test_tampered_tensors_fail_the_content_hash(tmp_path):
    store = ArtifactStore(tmp_path)
    saved = store.save("model", {"x": 1}, {"w": torch.zeros(10)})
    blob = bytearray((saved.path / "tensors.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (saved.path / "tensors.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="content hash does not match"):
        store.load("model", {"x": 1})


def test_not_an_artifact_is_named(tmp_path):
    with pytest.raises(ArtifactError, match="no manifest.json"):
        ArtifactStore.load_path(tmp_path)


def test_interrupted_write_leaves_previous_artifact_intact(tmp_path):
    store = ArtifactStore(tmp_path)
    good = store.save("model", {"x": 1}, {"w": torch.ones(2)})
    with pytest.raises(KeyboardInterrupt), atomic_directory(good.path) as tmp:
        (tmp / "tensors.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt
    assert torch.equal(store.load("model", {"x": 1}).tensors["w"], torch.ones(2))
    assert [p.name for p in good.path.parent.iterdir()] == [good.path.name]
