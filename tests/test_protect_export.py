"""Publishing a release: PNG image folders plus a manifest, read back bit for bit."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.data import load_dataset
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError, DataError
from dememo.protect.export import MANIFEST, class_folders, export_release
from dememo.protect.perturbation import Perturbation
from dememo.store import ArtifactStore
from tests.fixtures import image_tree, png_bytes, write_image_dir

runner = CliRunner()


def test_user_image_folder_protected_and_exported_reads_back_bit_for_bit(tmp_path):
    source = write_image_dir(
        tmp_path / "photos", image_tree(("cat", "dog", "emu"), per_class=4, size=(12, 10))
    )
    out, store = tmp_path / "release", tmp_path / "store"
    result = runner.invoke(app, ["protect", "lsp", "--dataset", "imagefolder", "--data-root", str(source),
                                 "--option", "patch_size=4", "--artifacts", str(store), "--export", str(out),
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    original = load_dataset("imagefolder", source)
    (path,) = (store / "perturbation").iterdir()
    artifact = ArtifactStore.load_path(path)
    expected = Perturbation.from_artifact(artifact).apply(original.train)
    back = load_dataset("imagefolder", out)
    assert back.train.images.dtype == torch.uint8
    assert torch.equal(back.train.images, expected.images)
    assert torch.equal(back.train.labels, expected.labels)
    assert not torch.equal(back.train.images, original.train.images)
    assert torch.equal(back.test.images, original.test.images) and torch.equal(
        back.test.labels, original.test.labels
    )
    assert back.train.classes == original.train.classes
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["method"] == "lsp" and manifest["options"]["patch_size"] == 4
    assert manifest["perturbation_hash"] == artifact.manifest["config_hash"]
    assert manifest["covered_indices"] == list(range(12)) and manifest["budget"] > 0
    assert manifest["dememo_version"] and manifest["images"] == {"train": 12, "test": 12}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release")]  # no temporaries left


def test_unsorted_or_unsafe_class_names_keep_their_labels(tmp_path):
    classes = ("T-shirt/top", "Trouser", "Ankle boot")
    assert class_folders(classes) == ["0_T-shirt_top", "1_Trouser", "2_Ankle boot"]
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 5, 7), dtype=torch.uint8, generator=generator)
    data = ImageSet(images, torch.tensor([2, 0, 1, 2, 1, 0]), classes, "grey")
    export_release(tmp_path / "r", data, data, {"method": "none"})
    back = load_dataset("imagefolder", tmp_path / "r")
    order = torch.sort(data.labels, stable=True).indices  # the reader lists samples class by class
    assert torch.equal(back.train.images, images[order]) and torch.equal(
        back.train.labels, data.labels[order]
    )
    assert json.loads((tmp_path / "r" / MANIFEST).read_text())["classes"]["0_T-shirt_top"] == "T-shirt/top"


def test_export_refuses_a_folder_that_is_not_a_release(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    data = ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), ("a", "b"))
    with pytest.raises(ConfigError, match="not a dememo release"):
        export_release(tmp_path / "mine", data, data, {})
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    export_release(tmp_path / "again", data, data, {})
    export_release(tmp_path / "again", data, data, {})  # an earlier release is replaced


# --- nothing lost beside a release, nothing of dememo's left beside it ------------------------------


def _tiny() -> ImageSet:
    images = torch.randint(
        0, 256, (4, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return ImageSet(images, torch.tensor([0, 1, 0, 1]), ("a", "b"))


def _protect(tmp_path, source, out, *extra):
    args = ["protect", "ops", "--dataset", "imagefolder", "--data-root", str(source), "--option",
            "pixels=1", "--artifacts", str(tmp_path / "store"), "--export", str(out), "--device", "cpu",
            *extra]  # fmt: skip
    return runner.invoke(app, args)


def test_user_hidden_folders_beside_an_export_survive_and_nothing_else_is_left(tmp_path):
    source = write_image_dir(tmp_path / "photos", image_tree())
    home = tmp_path / "home"
    user = [home / ".photos.old", home / ".x.old", home / ".y.tmp"]
    for folder in user:
        folder.mkdir(parents=True)
        (folder / "wedding.jpg").write_bytes(b"irreplaceable")
    result = _protect(tmp_path, source, home / "release")
    assert result.exit_code == 0, result.output
    _protect(tmp_path, source, home / "release")  # replacing an earlier release keeps them too
    assert all((folder / "wedding.jpg").read_bytes() == b"irreplaceable" for folder in user)
    assert sorted(p.name for p in home.iterdir()) == sorted([".photos.old", ".x.old", ".y.tmp", "release"])
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no lock above the export either


def test_release_has_the_usual_modes(tmp_path):
    mask = os.umask(0o022)
    try:
        export_release(tmp_path / "r", _tiny(), _tiny(), {})
    finally:
        os.umask(mask)
    for path in [tmp_path / "r", *(tmp_path / "r").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path


def test_an_export_inside_the_data_root_is_refused_before_any_work(tmp_path):
    source = write_image_dir(tmp_path / "photos", image_tree())
    for out in (source / "release", source, tmp_path):
        result = _protect(tmp_path, source, out)
        assert isinstance(result.exception, ConfigError), result.output
        assert "the data root" in str(result.exception)
    assert not (tmp_path / "store").exists() and not (source / "release").exists()
    assert len(load_dataset("imagefolder", source).train) == 6


def test_verify_and_load_name_changed_missing_and_added_files(tmp_path):
    out = export_release(tmp_path / "r", _tiny(), _tiny(), {})
    ok = runner.invoke(app, ["verify", str(out)])
    assert ok.exit_code == 0 and "OK" in ok.output and "8 files" in ok.output
    (out / ".DS_Store").write_bytes(b"finder")  # hidden files are never data: not a problem
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    edited = out / "train" / "a" / "0.png"
    edited.write_bytes(png_bytes(np.zeros((5, 5, 3), dtype=np.uint8)))
    with pytest.raises(DataError, match=r"train/a/0.png: changed after the export"):
        load_dataset("imagefolder", out)
    (out / "test" / "b" / "3.png").unlink()
    (out / "test" / "b" / "9.png").write_bytes(png_bytes(np.zeros((5, 5, 3), dtype=np.uint8)))
    bad = runner.invoke(app, ["verify", str(out)])
    assert isinstance(bad.exception, DataError) and "3 problem(s)" in str(bad.exception)
    assert "changed: train/a/0.png" in bad.output
    assert "missing: test/b/3.png" in bad.output and "not in the manifest: test/b/9.png" in bad.output
    edited.unlink()
    (out / "test" / "b" / "9.png").unlink()
    with pytest.raises(DataError, match=r"2 file\(s\) of the release listed in manifest.json are missing"):
        load_dataset("imagefolder", out)


def test_tilde_in_path_options_and_variables_is_the_home_folder(tmp_path, monkeypatch):
    from dememo.paths import artifact_root, cache_root, data_root

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for name in ("DEMEMO_CACHE", "DEMEMO_DATA", "DEMEMO_ARTIFACTS"):
        monkeypatch.setenv(name, "~/c")
    assert cache_root() == data_root() == artifact_root() == tmp_path / "home" / "c"
    monkeypatch.setenv("DEMEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DEMEMO_DATA")
    source = write_image_dir(tmp_path / "home" / "photos", image_tree())
    result = _protect(tmp_path, "~/photos", "~/release", "--artifacts", "~/store")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "release" / MANIFEST).is_file() and (tmp_path / "home" / "store").is_dir()
    assert not (tmp_path / "~").exists() and source.is_dir()


def test_a_folder_with_someone_elses_manifest_loads_unchecked(tmp_path):
    source = write_image_dir(tmp_path / "photos", image_tree())
    (source / MANIFEST).write_text("{not json, not dememo's")
    assert len(load_dataset("imagefolder", source).train) == 6
    (source / MANIFEST).write_text(json.dumps({"format": "other", "files": {}}))
    assert len(load_dataset("imagefolder", source).test) == 6
    bad = runner.invoke(app, ["verify", str(source)])
    assert isinstance(bad.exception, DataError) and "no dememo release manifest" in str(bad.exception)
