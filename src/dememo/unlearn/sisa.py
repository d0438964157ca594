"""SISA training and unlearning (Bourtoule et al. 2021): the training set is split into
shards, each shard into slices; one model per shard is trained slice by slice (stage j
trains on slices 0..j, starting from the checkpoint after stage j-1), and the ensemble
averages the members' probabilities. Unlearning retrains only the shards that hold a
forgotten sample, from the last checkpoint before its slice.

Shard and slice of a sample depend only on its position and the seed (a seeded
permutation of all positions), never on which samples are present, so unlearning gives
exactly the weights of training the reduced shard from scratch with the same seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.runtime import seed_everything
from dememo.train import Recipe, train
from dememo.unlearn.base import Unlearner, Work, register_unlearner


class SisaConfig(BaseModel):
    """How a SISA ensemble is trained; ``recipe`` runs once per slice stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shards: int = Field(5, ge=1)
    slices: int = Field(4, ge=1)
    recipe: Recipe
    seed: int = 0


def assignment(size: int, shards: int, slices: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(shard, slice) of every position 0..size-1, balanced, from a seeded permutation."""
    rank = torch.empty(size, dtype=torch.int64)
    rank[torch.randperm(size, generator=torch.Generator().manual_seed(seed))] = torch.arange(size)
    return rank % shards, (rank // shards) % slices


def stage_seed(seed: int, shard: int, stage: int) -> int:
    return seed * 1_000_003 + shard * 1009 + stage


class SisaEnsemble(nn.Module):
    """Shard members whose averaged softmax is the prediction (returned as log-probabilities)."""

    def __init__(
        self, members: list[nn.Module], config: SisaConfig, size: int, present: torch.Tensor
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = config
        self.shard_of, self.slice_of = assignment(size, config.shards, config.slices, config.seed)
        self.present = torch.zeros(size, dtype=torch.bool)
        self.present[present] = True
        # checkpoints[s][j]: member s's state before stage j (j = 0 is its initialization)
        self.checkpoints: list[list[dict[str, torch.Tensor]]] = [[] for _ in members]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([member(images).float().softmax(1) for member in self.members]).mean(0)
        return probs.clamp_min(1e-12).log()

    def slice_indices(self, shard: int) -> list[torch.Tensor]:
        mine = self.present & (self.shard_of == shard)
        return [torch.nonzero(mine & (self.slice_of == j)).flatten() for j in range(self.config.slices)]

    def train_shard(self, shard: int, data: ImageSet, first_stage: int, device: torch.device) -> int:
        """Train member ``shard`` from the checkpoint before ``first_stage`` to the end;
        returns the samples processed."""
        member, config = self.members[shard], self.config
        member.load_state_dict(self.checkpoints[shard][first_stage])
        del self.checkpoints[shard][first_stage + 1 :]
        slices, samples = self.slice_indices(shard), 0
        for stage in range(first_stage, config.slices):
            seen = torch.cat(slices[: stage + 1])
            if len(seen):
                train(member, data, config.recipe, seed=stage_seed(config.seed, shard, stage), device=device,
                      indices=seen, description=f"sisa shard {shard} stage {stage}")  # fmt: skip
                samples += len(seen) * config.recipe.epochs
            member.to("cpu", memory_format=torch.contiguous_format)
            self.checkpoints[shard].append(copy.deepcopy(member.state_dict()))
        return samples

    def full_cost(self) -> int:
        """Samples processed by training every shard from scratch on what is present now."""
        cost = 0
        for shard in range(self.config.shards):
            sizes = torch.tensor([len(s) for s in self.slice_indices(shard)])
            cost += int(sizes.cumsum(0).sum()) * self.config.recipe.epochs
        return cost


def train_sisa(
    factory: Callable[[], nn.Module],
    data: ImageSet,
    indices: torch.Tensor,
    config: SisaConfig,
    device: torch.device | str = "cpu",
) -> SisaEnsemble:
    """Train a SISA ensemble on ``data[indices]``; ``factory`` builds a fresh member
    (it is called after seeding, once per shard)."""
    members = []
    for shard in range(config.shards):
        seed_everything(stage_seed(config.seed, shard, -1))
        members.append(factory())
    ensemble = SisaEnsemble(members, config, len(data), torch.as_tensor(indices, dtype=torch.int64))
    for shard, member in enumerate(members):
        ensemble.checkpoints[shard] = [copy.deepcopy(member.state_dict())]
        ensemble.train_shard(shard, data, 0, torch.device(device))
    return ensemble


@register_unlearner
class Sisa(Unlearner):
    name = "sisa"
    description = "retrain the affected SISA shards from their last clean slice checkpoint"
    single_model = False

    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        if not isinstance(model, SisaEnsemble):
            raise ConfigError(
                "sisa: the model must be a SISA ensemble (train it with dememo.unlearn.sisa.train_sisa)"
            )
        if len(model.present) != len(data):
            raise ConfigError(
                f"sisa: the ensemble was trained on {len(model.present)} samples, data has {len(data)}"
            )
        missing = int((~model.present[forget]).sum())
        if missing:
            raise ConfigError(f"sisa: {missing} forget samples were not in the ensemble's training set")
        first: dict[int, int] = {}
        for shard, slc in zip(model.shard_of[forget].tolist(), model.slice_of[forget].tolist(), strict=True):
            first[shard] = min(slc, first.get(shard, slc))
        model.present[forget] = False
        full = model.full_cost()
        samples = sum(model.train_shard(s, data, j, self.device) for s, j in sorted(first.items()))
        saved = 1 - samples / full if full else 0.0
        details = {"retrained_shards": sorted(first), "first_stage": first, "samples_processed": samples,
                   "full_retrain_samples": full, "saved_fraction": saved}  # fmt: skip
        return Work(0, samples, ("retain",), details)
