"""Artifact store: round trip, config hashing, integrity, atomicity."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
import torch

from dememo import atomic
from dememo.atomic import atomic_directory, directory_lock
from dememo.errors import ArtifactError, TrainingError
from dememo.store import ArtifactStore, config_hash, file_sha256, manifest_sha256


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


# --- manifests are verified, not trusted ---------------------------------------------------


def _edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["metrics"].update(acc=0.99),
        lambda m: m["config"].update(x=2),
        lambda m: m.update(kind="perturbation"),
    ],
)
def test_edited_manifest_is_refused(tmp_path, change):
    store = ArtifactStore(tmp_path)
    saved = store.save("model", {"x": 1}, {"w": torch.ones(2)}, {"acc": 0.5})
    _edit_manifest(saved.path, change)
    with pytest.raises(ArtifactError, match="edited"):
        store.load("model", {"x": 1})


def test_config_must_hash_to_the_folder_name(tmp_path):
    store = ArtifactStore(tmp_path)
    saved = store.save("model", {"x": 1}, {"w": torch.ones(2)})
    moved = saved.path.with_name("0123456789abcdef")
    saved.path.rename(moved)
    with pytest.raises(ArtifactError, match="does not hash to the folder's name"):
        ArtifactStore.load_path(moved)


def test_wrong_kind_file_path_and_garbage_tensors_are_one_line_errors(tmp_path):
    store = ArtifactStore(tmp_path)
    saved = store.save("perturbation", {"x": 1}, {"w": torch.ones(2)})
    with pytest.raises(ArtifactError, match="a 'perturbation' artifact, expected a 'model' artifact"):
        ArtifactStore.load_path(saved.path, "model")
    with pytest.raises(ArtifactError, match="a file; pass the artifact directory"):
        ArtifactStore.load_path(saved.path / "tensors.safetensors")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "tensors.safetensors").write_bytes(b"\xff" * 64)
    manifest = {"kind": "model", "config": {"g": 1}, "config_hash": config_hash({"g": 1}), "metrics": {},
                "content_sha256": file_sha256(garbage / "tensors.safetensors")}  # fmt: skip
    manifest["manifest_sha256"] = manifest_sha256(manifest)
    final = tmp_path / config_hash({"g": 1})
    (garbage / "manifest.json").write_text(json.dumps(manifest))
    garbage.rename(final)
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        ArtifactStore.load_path(final)


def test_eval_of_a_perturbation_artifact_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from dememo.cli import app

    saved = ArtifactStore(tmp_path).save("perturbation", {"x": 1}, {"w": torch.ones(2)})
    result = CliRunner().invoke(app, ["eval", str(saved.path), "--device", "cpu"])
    assert isinstance(result.exception, ArtifactError)
    assert "not a model artifact" in str(result.exception)


# --- concurrent saves and leftovers of killed writers -----------------------------------------


def _save_many(root: str, times: int, tag: int) -> int:
    store, errors = ArtifactStore(root), 0
    for i in range(times):
        try:
            store.save("model", {"shared": True}, {"w": torch.full((256,), float(tag))}, {"i": i})
            loaded = store.load("model", {"shared": True})
            assert loaded is not None and loaded.tensors["w"].numel() == 256
        except Exception:  # counted: the test asserts there are none
            errors += 1
    return errors


def test_concurrent_saves_of_one_key_are_safe(tmp_path):
    context = multiprocessing.get_context("fork")
    with context.Pool(3) as pool:
        errors = pool.starmap(_save_many, [(str(tmp_path), 60, tag) for tag in range(3)])
    assert errors == [0, 0, 0]
    assert [p.name for p in (tmp_path / "model").iterdir()] == [config_hash({"shared": True})]
    assert ArtifactStore(tmp_path).load("model", {"shared": True}) is not None


def _die_while_writing(final: str) -> None:
    """A writer killed (no cleanup at all) half-way through its write."""
    with atomic_directory(Path(final)) as tmp:
        (tmp / "tensors.safetensors").write_bytes(b"partial")
        os._exit(9)


def _user_folders(parent: Path) -> list[Path]:
    """A user's own hidden folders whose names end like temporaries: never dememo's to remove."""
    folders = [parent / ".x.old", parent / ".y.tmp", parent / ".photos.old", parent / ".dememo-mine.tmp"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "wedding.jpg").write_bytes(b"irreplaceable")
    return folders


def test_leftovers_of_killed_writers_are_removed_on_the_next_save(tmp_path):
    store = ArtifactStore(tmp_path)
    kind_dir = tmp_path / "model"
    killed = multiprocessing.get_context("fork").Process(
        target=_die_while_writing, args=(str(kind_dir / config_hash({"a": 1})),)
    )
    killed.start()
    killed.join()
    assert killed.exitcode == 9
    leftovers = [p for p in kind_dir.iterdir() if p.name.startswith(".dememo-")]
    assert {p.suffix for p in leftovers} == {".tmp", ".lock"}  # what kill -9 leaves
    user = _user_folders(kind_dir)
    with directory_lock(kind_dir / config_hash({"b": 1})):  # a live writer of key b
        busy = atomic._temporary(kind_dir / config_hash({"b": 1}), ".tmp")
        store.save("model", {"c": 1}, {"w": torch.ones(1)})
    assert not any(p.exists() for p in leftovers)
    assert busy.exists()
    assert all((folder / "wedding.jpg").read_bytes() == b"irreplaceable" for folder in user)
    store.save("model", {"c": 2}, {"w": torch.ones(1)})  # the writer of b is gone now
    assert not busy.exists()
    assert sorted(p.name for p in kind_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [config_hash({"c": 1}), config_hash({"c": 2})]
    )
    assert sorted(p.name for p in kind_dir.iterdir() if p.name.startswith(".")) == sorted(
        p.name for p in user
    )  # no lock files or temporaries left


def test_saved_artifact_has_the_usual_modes_and_no_lock_file(tmp_path):
    saved = ArtifactStore(tmp_path).save("model", {"m": 1}, {"w": torch.ones(1)})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o777 & ~mask
    assert [p.name for p in saved.path.parent.iterdir()] == [saved.path.name]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tensors_are_never_saved(tmp_path, bad):
    weights = torch.ones(4, dtype=torch.bfloat16 if bad != bad else torch.float32)
    weights[1] = bad
    with pytest.raises(TrainingError, match=r"not saved: tensor 'layer.weight' has 1 non-finite value"):
        ArtifactStore(tmp_path).save("model", {"x": 1}, {"layer.weight": weights, "n": torch.arange(3)})
    assert not (tmp_path / "model").exists() or not any((tmp_path / "model").iterdir())
