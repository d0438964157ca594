"""The shared input of every audit: a model, its data, and the sets an audit looks at."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dememo.data import load_dataset
from dememo.data.imageset import Dataset, ImageSet
from dememo.data.scenarios import ScenarioSettings
from dememo.errors import ArtifactError, ConfigError, DataError
from dememo.pipeline import TrainConfig, check_model_data, model_with_weights, test_split, training_split
from dememo.store import Artifact, ArtifactStore

UNLEARNED_KIND = "unlearned"  # dememo.unlearn's artifacts: weights plus index.forget / index.retain
INDEX_PREFIX = "index."


@dataclass
class AuditTarget:
    """A model with the clean training split it learned from (members; for a protected
    model these are the clean counterparts Duc) and the test split (non-members);
    ``trained_on``: the training split as the model saw it (protected pixels where it was
    trained on protected data; None: not loaded, see ``training_pixels``)."""

    model: nn.Module
    train: ImageSet
    test: ImageSet
    name: str
    config: dict
    content: str = ""  # the artifact's content hash (names cached audits)
    forget: torch.Tensor | None = None  # training indices an unlearned model was asked to forget
    retain: torch.Tensor | None = None
    trained_on: ImageSet | None = None

    def __post_init__(self) -> None:
        check_classes(self.model, self.train)
        if self.train.num_classes != self.test.num_classes:
            raise DataError(f"{self.name}: train and test sets have different class counts")
        if self.trained_on is not None and self.trained_on.labels.shape != self.train.labels.shape:
            raise DataError(f"{self.name}: the training split as trained does not match the clean one")

    @property
    def protected(self) -> bool:
        """Whether the model (an unlearned model: its parent) trained on protected data."""
        return bool(self.config.get("perturbation"))

    def training_pixels(self, shadow: str) -> ImageSet:
        """The training split with the pixels the MIA's shadow members take: 'as-trained'
        (``trained_on``; the clean split for an unprotected model) or 'clean'."""
        if shadow == "clean" or not self.protected:
            return self.train
        if shadow != "as-trained":
            raise ConfigError(f"unknown shadow pixels {shadow!r}; valid: as-trained, clean")
        if self.trained_on is None:
            raise ConfigError(
                f"{self.name} trained on protected data: load its training split as trained "
                "(AuditTarget.from_artifact with the artifact store) or use clean shadows"
            )
        return self.trained_on

    @classmethod
    def from_artifact(
        cls,
        path: str | Path | Artifact,
        data_root: str | Path | None = None,
        dataset: Dataset | None = None,
        *,
        store: ArtifactStore | None = None,
        scenario: ScenarioSettings | None = None,
    ) -> AuditTarget:
        """Load a trained ('model') or unlearned ('unlearned') artifact (a path, or one already
        loaded) and the clean splits named by its TrainConfig (an unlearned model's: its
        parent's), from ``dataset`` when given (it must be that dataset) or from ``data_root``.
        With ``store`` (holding the parent model and its perturbation) also the training split
        as trained (``trained_on``; ``scenario``: the parent's scenario options, default its key's)."""
        stored = path if isinstance(path, Artifact) else ArtifactStore.load_path(path)
        path = stored.path
        manifest = stored.manifest
        kind = manifest.get("kind")
        if kind not in ("model", UNLEARNED_KIND):
            raise ArtifactError(f"{path}: kind {kind!r} is not a model; audits take 'model' or 'unlearned'")
        unlearned = kind == UNLEARNED_KIND
        raw_config = manifest["config"]["parent_config"] if unlearned else manifest["config"]
        config = TrainConfig.model_validate(raw_config)
        if dataset is None:
            dataset = load_dataset(config.dataset, data_root)
        check_model_data(config, dataset, path)  # the data the model (its parent) was made from
        train = training_split(config, dataset)
        weights = {k: v for k, v in stored.tensors.items() if not k.startswith(INDEX_PREFIX)}
        model = model_with_weights(config, weights, train, stored.path)
        index = {k[len(INDEX_PREFIX) :]: v for k, v in stored.tensors.items() if k.startswith(INDEX_PREFIX)}
        name = f"{manifest['config'].get('method', config.model)}/{manifest['config_hash'][:8]}"
        trained_on = None
        if store is not None:
            from dememo.unlearn.jobs import parent_training_set  # noqa: PLC0415  (unlearn loads models)

            parent = stored
            if unlearned:
                parent = ArtifactStore.load_path(store.root / "model" / manifest["config"]["parent"])
            trained_on = parent_training_set(parent, dataset, store, scenario)[0]
        return cls(model, train, test_split(config, dataset), name, raw_config, manifest["content_sha256"],
                   index.get("forget"), index.get("retain"), trained_on)  # fmt: skip

    @property
    def data_fingerprint(self) -> str:
        """Content hash of the data this audit reads: the clean training and test splits and,
        when loaded, the training split as trained."""
        parts = [self.train.fingerprint, self.test.fingerprint]
        if self.trained_on is not None:
            parts.append(self.trained_on.fingerprint)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    @property
    def identity(self) -> dict[str, str | None]:
        """What names this target in cached audits: the model's content, the data's content
        (other data never reuses a report) and, when set, the forget set's indices (a Before
        model can be audited on many forget sets)."""
        forget = None
        if self.forget is not None:
            data = torch.sort(self.forget.long()).values.numpy().tobytes()
            forget = hashlib.sha256(data).hexdigest()[:16]
        return {"model": self.content, "data": self.data_fingerprint, "forget": forget}

    def sets(self, target_class: int | None = None, seed: int = 0) -> AuditSets:
        """The sets the audits use. Target: ``target_class``'s training images if given,
        else the forget set of an unlearned model, else a random half of the training set."""
        rng = torch.Generator().manual_seed(seed)
        train_index, test_index = torch.arange(len(self.train)), torch.arange(len(self.test))
        if target_class is not None:
            if not 0 <= target_class < self.train.num_classes:
                raise ConfigError(f"target class {target_class} outside [0, {self.train.num_classes - 1}]")
            in_class = self.train.labels == target_class
            target, retain = train_index[in_class], train_index[~in_class]
            what = f"class {target_class}"
        elif self.forget is not None:
            target = self.forget.long()
            retain = (
                self.retain.long() if self.retain is not None else train_index[~_isin(train_index, target)]
            )
            what = "forget set"
        else:
            order = torch.randperm(len(self.train), generator=rng)
            target, retain = order[: len(order) // 2], order[len(order) // 2 :]
            what = "training half"
        classes = torch.unique(self.train.labels[target])
        in_classes = _isin(self.test.labels, classes)
        if bool(in_classes.all()):
            order = torch.randperm(len(self.test), generator=rng)
            unseen, rest = order[: len(order) // 2], order[len(order) // 2 :]
        else:
            unseen, rest = test_index[in_classes], test_index[~in_classes]
        return AuditSets(
            self.train.subset(target, f"{what} (train, clean)"),
            self.train.subset(retain, "retain (train)"),
            self.test.subset(unseen, f"{what} classes (test)"),
            self.test.subset(rest, "other test"),
            self.train.subset(
                train_index[_isin(self.train.labels, classes)], f"{what} classes (train, clean)"
            ),
            self.test.subset(test_index[in_classes], f"{what} classes (test)"),
            retain,
        )


def _isin(values: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    return torch.isin(values, pool)


@dataclass
class AuditSets:
    """Who plays which role (clean pixels throughout; the MIA takes its shadow members'
    pixels from ``AuditTarget.training_pixels`` at ``retain_index``)."""

    target: ImageSet  # the audited set: scored by MIA, the positives of every ROC
    retain: ImageSet  # training samples the model should still know: shadow members
    unseen: ImageSet  # test samples of the target's classes: the negatives of every ROC
    unseen_rest: ImageSet  # other test samples: shadow non-members
    class_train: ImageSet  # training images of the target's classes: recovery attack data pool
    class_test: ImageSet  # test images of the target's classes: recovery / certification evaluation
    retain_index: torch.Tensor | None = None  # training-split positions of ``retain``


def check_classes(model: nn.Module, data: ImageSet) -> None:
    """Raise if the model's output size differs from the data's class count."""
    if len(data) == 0:
        raise DataError(f"{data.name}: empty set")
    param = next(model.parameters())
    model_was_training = model.training
    model.eval()
    with torch.no_grad():
        sample = data.images[:1].to(param.device).float() / 255
        outputs = model(sample).shape[-1]
    model.train(model_was_training)
    if outputs != data.num_classes:
        raise ConfigError(f"the model has {outputs} outputs but {data.name} has {data.num_classes} classes")


def image_digests(data: ImageSet) -> set[bytes]:
    """One digest per image's pixels (for overlap checks between sets)."""
    flat = data.images.flatten(1).contiguous().numpy()
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def require_disjoint(first: ImageSet, second: ImageSet, what: str) -> None:
    """Raise DataError when the two sets share an image (compared by pixel content)."""
    shared = len(image_digests(first) & image_digests(second))
    if shared:
        raise DataError(
            f"{what}: {first.name} and {second.name} share {shared} images; they must be disjoint"
        )
