"""Error-minimizing noise (Huang et al. 2021): the bi-level min-min loop.

A round trains the surrogate for ``train_steps`` SGD steps on the perturbed data
(``x + delta`` clamped to [0, 1], then augmented if asked: never
``augment(x) + delta``), then updates the noise with sign-gradient steps that
*lower* the surrogate's loss. Rounds stop when the surrogate classifies the
perturbed data with ``stop_accuracy``. Defaults follow the official code
(HanxunH/Unlearnable-Examples): eps 8/255, step 0.8/255, 10 surrogate batches
of 512 per round, no augmentation, gradient clipping at 5, SGD lr 0.1.

Sample-wise (UE-s): 20 steps per sample per pass over all covered samples; the
stop check is fused into that pass (the surrogate is fixed during it, so the
accuracy of the freshly updated noise is exactly the reference's separate
evaluation pass). Class-wise (UE-c): one step per batch from each sample's class
noise, then the class noise becomes the batch mean of its samples' results;
noise updates and the stop check use a stratified ``noise_subset`` (20%), and
rounds stop once the surrogate's accuracy on that subset, with the updated class
noise, reaches ``stop_accuracy`` 90% (the official README's class-wise command
passes ``--universal_stop_error 0.1``; the sample-wise one stops at 99%).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from dememo.data.augment import Augment, augment_batch
from dememo.data.imageset import ImageSet
from dememo.models import build_model, fit_from_data
from dememo.progress import make_progress
from dememo.protect.base import ProtectConfig, Protector
from dememo.protect.perturbation import Perturbation
from dememo.protect.pixel_pgd import frozen, pgd, project_linf
from dememo.runtime import autocast, channels_last, seed_everything
from dememo.train import FIT_IMAGES


class MinMinConfig(ProtectConfig):
    surrogate: str = "resnet18"
    surrogate_lr: float = 0.1
    surrogate_momentum: float = 0.9
    surrogate_weight_decay: float = 5e-4
    grad_clip: float = 5.0
    train_steps: int = 10  # surrogate SGD steps per round
    train_batch_size: int = 512
    noise_batch_size: int = 512
    pgd_steps: int = 20
    step_size: float = 0.8 / 255
    stop_accuracy: float = 0.99
    max_rounds: int = 200
    random_start: bool = False  # official default: noise starts at zero
    augment: Augment = Augment()  # official generation uses no augmentation


class ClassWiseConfig(MinMinConfig):
    pgd_steps: int = 1
    stop_accuracy: float = 0.9  # official class-wise command: --universal_stop_error 0.1
    noise_subset: float = 0.2  # stratified share of samples used for noise updates and the stop check


def stratified_subset(labels: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Positions of ``fraction`` of each class's samples (at least one per class present)."""
    picks = []
    for cls in torch.unique(labels):
        members = torch.nonzero(labels == cls).flatten()
        keep = max(1, round(fraction * len(members)))
        picks.append(members[torch.randperm(len(members), generator=generator)[:keep]])
    return torch.sort(torch.cat(picks)).values


class ErrorMinimizing(Protector):
    """The min-min loop. Subclasses pick sharing (``class_wise``) and may override
    ``surrogate_update`` and ``noise_update`` (PUE averages over weight noise)."""

    Config = MinMinConfig
    class_wise: bool = False

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg = self.config
        seed_everything(cfg.seed)
        dev = self.device
        self.generator = torch.Generator(device=dev).manual_seed(cfg.seed)
        images = channels_last(data.images[indices].to(dev))
        labels = data.labels[indices].to(dev)
        groups = labels.clone() if self.class_wise else torch.arange(len(indices), device=dev)
        rows = data.num_classes if self.class_wise else len(indices)
        delta = channels_last(torch.zeros(rows, *data.images.shape[1:], device=dev))
        if cfg.random_start:
            delta.uniform_(-cfg.budget, cfg.budget, generator=self.generator)
        noise_positions = torch.arange(len(indices), device=dev)
        if self.class_wise:
            noise_positions = stratified_subset(
                labels.cpu(), cfg.noise_subset, torch.Generator().manual_seed(cfg.seed)
            ).to(dev)
        mean, std = data.channel_stats()
        model = build_model(cfg.surrogate, data.channels, data.num_classes, data.image_size, mean, std).to(
            dev
        )
        fit_from_data(model, images[:FIT_IMAGES].float() / 255)  # airbench's whitening, on clean images
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.surrogate_lr, momentum=cfg.surrogate_momentum,
                                    weight_decay=cfg.surrogate_weight_decay)  # fmt: skip
        batches = self._training_batches(len(indices))
        history: list[float] = []
        with make_progress() as bar:
            task = bar.add_task(f"{self.name} rounds", total=cfg.max_rounds, status="")
            for round_ in range(cfg.max_rounds):
                model.train()
                for _ in range(cfg.train_steps):
                    batch = next(batches)
                    inputs = (images[batch].float() / 255 + delta[groups[batch]]).clamp(0, 1)
                    if cfg.augment.active:
                        inputs = augment_batch(inputs, cfg.augment, self.generator)
                    self.surrogate_update(model, optimizer, inputs, labels[batch], history)
                acc = self._noise_pass(model, images, labels, delta, groups, noise_positions, history)
                history.append(acc)
                bar.update(task, advance=1, status=f"round {round_ + 1}: surrogate acc {100 * acc:.1f}%")
                if acc >= cfg.stop_accuracy:
                    break
        return Perturbation(
            self.name, "additive", indices.cpu(), groups.cpu(), delta.cpu(), len(data), cfg.budget,
            config={**cfg.model_dump(), "rounds": len(history), "surrogate_accuracy": history},
        )  # fmt: skip

    # --- steps that PUE replaces ---------------------------------------------------------

    def surrogate_update(self, model, optimizer, inputs, targets, history) -> None:
        """One SGD step of the surrogate on a perturbed batch."""
        with autocast(self.device, self.precision):
            loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
        optimizer.step()

    def noise_update(self, model, clean, targets, delta, history) -> torch.Tensor:
        """``pgd_steps`` error-minimizing sign steps from ``delta``."""
        cfg = self.config
        return pgd(model, clean, targets, delta, budget=cfg.budget, step_size=cfg.step_size,
                   steps=cfg.pgd_steps, minimize=True)  # fmt: skip

    # --- the loop's pieces ---------------------------------------------------------------

    def _training_batches(self, n: int) -> Iterator[torch.Tensor]:
        size = min(self.config.train_batch_size, n)
        while True:
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for start in range(0, n - size + 1, size):
                yield order[start : start + size]

    def _noise_pass(self, model, images, labels, delta, groups, positions, history) -> float:
        """Update the noise once over ``positions``; return the surrogate's accuracy there."""
        cfg = self.config
        correct = 0
        if self.class_wise:
            positions = positions[
                torch.randperm(len(positions), generator=self.generator, device=self.device)
            ]
        with frozen(model), autocast(self.device, self.precision):
            for start in range(0, len(positions), cfg.noise_batch_size):
                part = positions[start : start + cfg.noise_batch_size]
                clean, targets, rows = images[part].float() / 255, labels[part], groups[part]
                stepped = self.noise_update(model, clean, targets, delta[rows], history)
                if self.class_wise:
                    _replace_with_class_means(delta, rows, stepped)
                else:
                    delta[rows] = stepped
                    with torch.no_grad():  # the model is fixed during the pass: this is the stop check
                        correct += int((model((clean + stepped).clamp(0, 1)).argmax(1) == targets).sum())
            if self.class_wise:
                correct = self._count_correct(model, images, labels, delta, groups, positions)
        return correct / len(positions)

    def _count_correct(self, model, images, labels, delta, groups, positions) -> int:
        correct = 0
        with torch.no_grad():
            for start in range(0, len(positions), self.config.noise_batch_size):
                part = positions[start : start + self.config.noise_batch_size]
                clean = images[part].float() / 255
                inputs = clean + project_linf(delta[groups[part]], clean, self.config.budget)
                correct += int((model(inputs).argmax(1) == labels[part]).sum())
        return correct


def _replace_with_class_means(delta: torch.Tensor, rows: torch.Tensor, stepped: torch.Tensor) -> None:
    """Each class present in the batch takes the mean of its samples' stepped noise."""
    sums = torch.zeros_like(delta).index_add_(0, rows, stepped)
    counts = torch.bincount(rows, minlength=len(delta)).to(delta.dtype)
    present = counts > 0
    delta[present] = sums[present] / counts[present].view(-1, 1, 1, 1)
