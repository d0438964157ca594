"""Data identity: artifacts are keyed on the decoded content, and eval refuses other data."""

from __future__ import annotations

import pytest
import torch
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


# --- unlearn and audit: the data must be the model's, and their keys hold it -------------------------


def _train_on_folder(tmp_path, folder):
    args = ["train", "--dataset", "imagefolder", "--epochs", "1", "--artifacts", str(tmp_path / "art"),
            "--device", "cpu", "--precision", "fp32", "--data-root", str(folder)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return next((tmp_path / "art" / "model").iterdir())


def _unlearn(tmp_path, model, folder):
    args = ["unlearn", "ga", str(model), "--forget", "class=0", "--data-root", str(folder),
            "--artifacts", str(tmp_path / "art"), "--device", "cpu", "-o", "epochs=1"]  # fmt: skip
    return runner.invoke(app, args)


def test_an_imagefolder_model_is_unlearned_from_the_cli(tmp_path):
    folder = write_image_dir(tmp_path / "pets", image_tree(seed=1))
    model = _train_on_folder(tmp_path, folder)
    first = _unlearn(tmp_path, model, folder)
    assert first.exit_code == 0, (first.output, first.exception)
    assert "saved unlearned model" in first.output and "forgot 3 samples" in first.output
    assert "reused stored unlearned model" in _unlearn(tmp_path, model, folder).output


def test_unlearn_refuses_other_data_and_keys_on_the_data(tmp_path):
    folder_a = write_image_dir(tmp_path / "a", image_tree(seed=1))
    folder_b = write_image_dir(tmp_path / "b" / "a", image_tree(seed=2))  # same folder name, other content
    model = _train_on_folder(tmp_path, folder_a)
    refused = _unlearn(tmp_path, model, folder_b)
    assert isinstance(refused.exception, DataError), refused.output
    message = str(refused.exception)
    fingerprint_a = load_dataset("imagefolder", folder_a).fingerprint
    fingerprint_b = load_dataset("imagefolder", folder_b).fingerprint
    assert "not the data the model was made from" in message
    assert fingerprint_a in message and fingerprint_b in message
    assert not (tmp_path / "art" / "unlearned").exists()
    assert _unlearn(tmp_path, model, folder_a).exit_code == 0
    (stored,) = (tmp_path / "art" / "unlearned").iterdir()
    train_a = load_dataset("imagefolder", folder_a).train
    assert ArtifactStore.load_path(stored).manifest["config"]["data"] == train_a.fingerprint


def test_unlearn_or_load_never_reuses_a_result_made_from_other_data(tmp_path, digits):
    from dememo.unlearn import unlearn_or_load

    store = ArtifactStore(tmp_path)
    recipe = get_recipe("quick", epochs=1)
    config = TrainConfig(dataset="digits", model="mlp", recipe=recipe, train_per_class=5)
    trained = train_or_load(config, digits, store)
    train = digits.train.head(5)
    images = train.images.clone()
    images[:, :, 0, 0] = 255
    other = Dataset("digits", ImageSet(images, train.labels, train.classes), digits.test)
    forget, retain = torch.arange(5), torch.arange(5, 50)
    first = unlearn_or_load("ga", trained.artifact, train, forget, retain, store, epochs=1, dataset=digits)
    with pytest.raises(DataError, match=f"fingerprint {other.fingerprint}.*fingerprint {digits.fingerprint}"):
        unlearn_or_load("ga", trained.artifact, other.train, forget, retain, store, epochs=1, dataset=other)
    second = unlearn_or_load("ga", trained.artifact, other.train, forget, retain, store, epochs=1)
    assert not second.reused and second.artifact.path != first.artifact.path


def test_audit_refuses_other_data_and_keys_reports_on_the_data(tmp_path):
    from dememo.audit.target import AuditTarget

    folder_a = write_image_dir(tmp_path / "a", image_tree(seed=1))
    folder_b = write_image_dir(tmp_path / "b" / "a", image_tree(seed=2))
    model = _train_on_folder(tmp_path, folder_a)
    assert _unlearn(tmp_path, model, folder_a).exit_code == 0
    unlearned = next((tmp_path / "art" / "unlearned").iterdir())
    for artifact in (model, unlearned):  # an unlearned model is checked against its parent's data
        with pytest.raises(DataError, match="not the data the model was made from"):
            AuditTarget.from_artifact(artifact, folder_b)
    audit = ["audit", "mia", str(model), "--artifacts", str(tmp_path / "art"), "--device", "cpu",
             "--data-root"]  # fmt: skip
    refused = runner.invoke(app, [*audit, str(folder_b)])
    assert isinstance(refused.exception, DataError), refused.output
    assert not (tmp_path / "art" / "audit").exists()
    target = AuditTarget.from_artifact(model, folder_a)
    same_model_other_data = AuditTarget(target.model, target.test, target.train, "x", target.config,
                                        target.content)  # fmt: skip
    assert target.identity["data"] != same_model_other_data.identity["data"]
    assert target.identity["model"] == same_model_other_data.identity["model"]
