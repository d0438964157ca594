"""Model registry: CIFAR-style ResNet-18, DenseNet-121, ViT-Tiny, fast and tiny nets.

Every model takes float images in [0, 1]; normalization is the first layer, so
perturbations and attacks work in pixel space.
"""

from dememo.models import architectures  # noqa: F401  (fills the registry)
from dememo.models.registry import MODELS, ModelSpec, build_model, fit_from_data, flip_evaluated

__all__ = ["MODELS", "ModelSpec", "build_model", "fit_from_data", "flip_evaluated"]
