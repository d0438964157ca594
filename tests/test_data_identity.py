"""Data identity: artifacts are keyed on the decoded content, and eval refuses other data."""

from __future__ import annotations

from typer.testing import CliRunner

from dememo.cli import app
from dememo.data import load_dataset
from dememo.data.imageset import Dataset, ImageSet
from dememo.errors import DataError
from dememo.pipeline import TrainConfig, train_or_load
from dememo.protect.jobs import protect_or_load
from dememo.store import ArtifactStore
from dememo.train import get_recipe
from tests.fixtures import image_tree, write_image_dir

runner = CliRunner()


def test_fingerprint_sees_one_pixel_and_one_label_but_not_the_name(digits):
    images = digits.train.images.clone()
    images[0, 0, 0, 0] ^= 1
    labels = digits.train.labels.clone()
    labels[0] = (labels[0] + 1) % 10
    same = ImageSet(digits.train.images.clone(), digits.train.labels.clone(), digits.train.classes, "other")
    assert same.fingerprint == digits.train.fingerprint
    assert ImageSet(images, digits.train.labels, digits.train.classes).fingerprint != digits.train.fingerprint
    assert ImageSet(digits.train.images, labels, digits.train.classes).fingerprint != digits.train.fingerprint
    assert Dataset("x", same, digits.test).fingerprint == digits.fingerprint


def test_same_options_on_other_folders_train_separate_models(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    config = TrainConfig(dataset="imagefolder", model="tinycnn", recipe=get_recipe("quick", epochs=1))
    first = load_dataset("imagefolder", write_image_dir(tmp_path / "a", image_tree(seed=1)))
    second = load_dataset("imagefolder", write_image_dir(tmp_path / "b", image_tree(seed=2)))
    trained_a = train_or_load(config, first, store)
    trained_b = train_or_load(config, second, store)
    assert not trained_b.reused
    assert trained_a.artifact.path != trained_b.artifact.path
    assert trained_b.artifact.manifest["config"]["data"] == second.fingerprint
    assert train_or_load(config, first, store).reused
    bound = config.model_copy(update={"data": first.fingerprint})
    try:
        train_or_load(bound, second, store)
    except DataError as error:
        assert "not the data the model was made from" in str(error)
    else:
        raise AssertionError("a config bound to other data was accepted")


def test_eval_refuses_other_data_unless_asked(tmp_path):
    folder_a = write_image_dir(tmp_path / "a", image_tree(seed=1))
    folder_b = write_image_dir(tmp_path / "b", image_tree(seed=2))
    train = ["train", "--dataset", "imagefolder", "--epochs", "1", "--artifacts", str(tmp_path / "art"),
             "--device", "cpu", "--data-root"]  # fmt: skip
    trained = runner.invoke(app, [*train, str(folder_a)])
    assert trained.exit_code == 0, trained.output
    artifact = next((tmp_path / "art" / "model").iterdir())
    again = runner.invoke(app, [*train, str(folder_b)])
    assert "saved model" in again.output and "reused" not in again.output
    refused = runner.invoke(app, ["eval", str(artifact), "--data-root", str(folder_b), "--device", "cpu"])
    assert isinstance(refused.exception, DataError)
    assert "not the data the model was made from" in str(refused.exception)
    allowed = runner.invoke(
        app, ["eval", str(artifact), "--data-root", str(folder_b), "--device", "cpu", "--allow-other-data"]
    )
    assert allowed.exit_code == 0 and "other data" in allowed.output
    same = runner.invoke(app, ["eval", str(artifact), "--data-root", str(folder_a), "--device", "cpu"])
    assert same.exit_code == 0, same.output


def test_perturbation_key_holds_the_data(tmp_path, digits):
    store = ArtifactStore(tmp_path)
    images = digits.train.images.clone()
    images[:, :, 0, 0] = 255
    other = Dataset("digits", ImageSet(images, digits.train.labels, digits.train.classes), digits.test)
    first = protect_or_load("ops", digits, digits.train, store, pixels=1)
    second = protect_or_load("ops", other, other.train, store, pixels=1)
    assert not second.reused and first.key != second.key
