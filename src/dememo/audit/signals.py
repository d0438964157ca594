"""Per-sample membership signals computed from a model's output probabilities.

Every signal is a float64 array; ``MEMBER_SIGN`` says which direction points to
"member" (+1: larger values look like training data), so threshold attacks can
orient a score without knowing the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.train import predict_logits

TINY = 1e-30  # inside logs, as in Song & Mittal's code: log(0) would give -inf * 0 = nan

SCALAR_SIGNALS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")
VECTOR_SIGNALS = ("probability",)
MEMBER_SIGN = {"correctness": 1, "confidence": 1, "entropy": -1, "modified_entropy": -1, "loss": -1}


@dataclass(frozen=True)
class Signals:
    """Softmax outputs (N, C) and labels (N,) of one model on one set."""

    probs: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.probs.ndim != 2 or len(self.probs) != len(self.labels):
            raise ConfigError(f"probabilities {self.probs.shape} do not match {len(self.labels)} labels")

    @classmethod
    def from_logits(cls, logits: torch.Tensor, labels: torch.Tensor) -> Signals:
        probs = torch.softmax(logits.double(), dim=1).cpu().numpy()
        return cls(probs, labels.cpu().numpy().astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def true_prob(self) -> np.ndarray:
        return self.probs[np.arange(len(self)), self.labels]

    def correctness(self) -> np.ndarray:
        return (self.probs.argmax(1) == self.labels).astype(np.float64)

    def confidence(self) -> np.ndarray:
        """Probability of the true label, p_y."""
        return self.true_prob

    def probability(self) -> np.ndarray:
        """The whole probability vector (N, C) (the paper's 'prob' column, FACTS 2.2)."""
        return self.probs

    def entropy(self) -> np.ndarray:
        """-sum_i p_i log p_i."""
        return -(self.probs * np.log(np.maximum(self.probs, TINY))).sum(1)

    def modified_entropy(self) -> np.ndarray:
        """Song & Mittal 2021: -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)."""
        p_y = self.true_prob
        others = self.probs * np.log(np.maximum(1.0 - self.probs, TINY))
        others[np.arange(len(self)), self.labels] = 0.0
        return -(1.0 - p_y) * np.log(np.maximum(p_y, TINY)) - others.sum(1)

    def loss(self) -> np.ndarray:
        """Cross-entropy, -log p_y."""
        return -np.log(np.maximum(self.true_prob, TINY))

    def get(self, name: str) -> np.ndarray:
        """A signal by name: (N,) for scalar signals, (N, C) for 'probability'."""
        if name not in SCALAR_SIGNALS + VECTOR_SIGNALS:
            valid = ", ".join(SCALAR_SIGNALS + VECTOR_SIGNALS)
            raise ConfigError(f"unknown membership signal {name!r}; valid: {valid}")
        return getattr(self, name)()

    def features(self, name: str) -> np.ndarray:
        """The signal as a 2-d feature matrix (N, d) for a classifier."""
        values = self.get(name)
        return values if values.ndim == 2 else values[:, None]


def model_signals(model: nn.Module, data: ImageSet, *, device: torch.device | str = "cpu") -> Signals:
    """Signals of ``model`` (in eval mode, fp32) on every sample of ``data``."""
    return Signals.from_logits(predict_logits(model, data, device=device), data.labels)
