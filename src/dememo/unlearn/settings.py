"""The paper's unlearning settings as data (SoK, section 6.2.1 and Appendix A, Tables 8-9).

What the paper leaves open is chosen here and marked as an assumption:
- Victim recipe: 100 epochs, SGD lr 0.01, momentum 0.9, weight decay 5e-4 are stated;
  batch 128, cosine schedule and random crop + flip are assumptions.
- FT and GA: only epochs (10 and 5) and learning rates are stated; SGD with momentum
  0.9, weight decay 5e-4, batch 256 and a constant rate are assumptions, see
  ``dememo.unlearn.ft``.
- Augmentation in unlearning (FT, GA and IF's gradients): the parent recipe's by
  default (option ``augment``, filled in by ``unlearn_or_load``), an assumption that
  follows the official code the paper very probably reused (OPTML-Group Unlearn-Sparse
  / Unlearn-Saliency: the retain and forget loaders keep the training transforms,
  random crop with padding 4 and horizontal flip on CIFAR).
- GA ascends the *mean* forget loss (the loss normalization is unstated).
- IF: first-order WoodFisher, damping 1 (the identity start of the public WoodFisher
  code the paper very probably used; an assumption). The exact inverse (a check on
  small models, not the paper's method) needs an explicit damping.
"""

from __future__ import annotations

from dememo.data.augment import Augment
from dememo.errors import ConfigError
from dememo.train import RECIPES, Recipe

SOURCE = "SoK paper, section 6.2.1 / Appendix A"

VICTIM_RECIPE = RECIPES.register("paper-sgd-unlearning")(
    Recipe(name="paper-sgd-unlearning", epochs=100, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4,
           schedule="cosine", augment=Augment(crop_padding=4, flip=True),
           source=f"{SOURCE}: pre-unlearning ResNet-18 on CIFAR-10 (100 ep, SGD lr 0.01, momentum 0.9, "
           "wd 5e-4); batch 128, cosine schedule and crop+flip are assumptions (unstated)")
)  # fmt: skip

SCALES = ("small", "large")

# Table 9 (class level; the same for every forgotten class): protection -> method -> (small, large)
TABLE9: dict[str, dict[str, tuple[float, float]]] = {
    "tue": {"if": (2, 7), "ft": (1.5e-2, 3e-2), "ga": (1.5e-5, 1.1e-4)},
    "ue-s": {"if": (2, 7), "ft": (1.5e-2, 3e-2), "ga": (1.1e-5, 2.6e-5)},
    "pue": {"if": (2, 7), "ft": (1.5e-2, 3e-2), "ga": (1.7e-5, 4.8e-5)},
    "ops": {"if": (2, 7), "ft": (1.5e-2, 3e-2), "ga": (1.7e-5, 6.7e-5)},
}

# Table 8 (subset level): protection -> forget set -> method -> (small, large)
TABLE8: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "tue": {"Du": {"if": (0.5, 5), "ft": (5e-3, 6e-2), "ga": (3e-5, 6e-5)},
            "Dc": {"if": (0.5, 5), "ft": (5e-3, 2.5e-2), "ga": (3e-5, 1.5e-4)}},
    "ue-s": {"Du": {"if": (0.3, 3), "ft": (5e-3, 6e-2), "ga": (3e-5, 3.5e-5)},
             "Dc": {"if": (0.3, 3), "ft": (5e-3, 2e-2), "ga": (3e-5, 8e-5)}},
    "pue": {"Du": {"if": (0.6, 6), "ft": (5e-3, 6e-2), "ga": (3e-5, 8e-5)},
            "Dc": {"if": (0.6, 6), "ft": (5e-3, 2.5e-2), "ga": (3e-5, 2e-4)}},
    "ops": {"Du": {"if": (0.3, 3), "ft": (5e-3, 6e-2), "ga": (3e-5, 1e-4)},
            "Dc": {"if": (0.3, 3), "ft": (5e-3, 2.5e-2), "ga": (3e-5, 1.5e-4)}},
}  # fmt: skip

# The paper's names of the protections in Tables 10-17.
TABLE_NAMES = {"ue-s": "UE-s", "tue": "TUE", "pue": "PUE", "ops": "OPS"}


def paper_scale(protection: str, level: str, method: str, scale: str, part: str = "Du") -> float:
    """The paper's small/large hyperparameter (alpha for IF, learning rate for FT/GA)."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    try:
        row = TABLE9[protection] if level == "class" else TABLE8[protection][part]
        pair = row[method]
    except KeyError:
        raise ConfigError(
            f"the paper gives no {level}-level scale for {method!r} under {protection!r} "
            f"(Tables 8-9 cover {', '.join(TABLE9)} with if, ft, ga)"
        ) from None
    return float(pair[SCALES.index(scale)])
