"""Publishing a release: PNG image folders plus a manifest, read back bit for bit."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from dememo.cli import app
from dememo.data import load_dataset
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.protect.export import MANIFEST, class_folders, export_release
from dememo.protect.perturbation import Perturbation
from dememo.store import ArtifactStore
from tests.fixtures import image_tree, write_image_dir

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
