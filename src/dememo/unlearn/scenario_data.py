"""A scenario's data as a model saw it, and accuracies on a forgetting target's sets.

The interplay studies (section 6.2) measure every model on the target's evaluation
sets (Du, Duc, Dc, Dt, Dut, Dct, Dtr): some index the released (protected) training
split, some the same positions without protection, some the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dememo.data.imageset import Dataset, ImageSet
from dememo.data.scenarios import Scenario, ScenarioSettings, Target
from dememo.errors import ConfigError
from dememo.pipeline import TrainConfig, test_split, training_split
from dememo.store import Artifact, ArtifactStore
from dememo.train import accuracy
from dememo.unlearn.jobs import parent_training_set


@dataclass(frozen=True)
class ScenarioData:
    scenario: Scenario
    released: ImageSet  # the training split as the parent model trained on it
    clean: ImageSet  # the same positions without protection
    test: ImageSet

    @property
    def sources(self) -> dict[str, ImageSet]:
        return {"released": self.released, "clean": self.clean, "test": self.test}

    def evaluate(self, model: nn.Module, target: Target, device: torch.device | str) -> dict[str, float]:
        """Accuracy (%) on each of the target's evaluation sets, by set name."""
        sources = self.sources
        return {
            e.name: 100 * accuracy(model, sources[e.source], indices=e.indices, device=device)
            for e in target.evals
        }


def scenario_data(
    parent: Artifact, dataset: Dataset, store: ArtifactStore, settings: ScenarioSettings
) -> ScenarioData:
    """The data of the scenario a Before model (``parent``) was trained in."""
    released, scenario = parent_training_set(parent, dataset, store, settings)
    if scenario is None:
        raise ConfigError(f"{parent.path}: not trained in a scenario (no protected positions recorded)")
    config = TrainConfig.model_validate(parent.manifest["config"])
    return ScenarioData(scenario, released, training_split(config, dataset), test_split(config, dataset))
