"""The Protector protocol, its registry, and the common options every method takes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, model_validator

from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.options import SeedField, check_float32_range, validate_options
from dememo.protect.perturbation import Perturbation
from dememo.registry import Registry
from dememo.runtime import Precision


class ProtectConfig(BaseModel):
    """Options shared by every protector. Subclasses add the method's own, with the
    defaults of the method's official code."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    budget: float = 8 / 255  # l_inf bound in [0, 1] pixel units (unused by OPS)
    fraction: float = 1.0  # share of the eligible samples that get perturbed
    classes: tuple[int, ...] | None = None  # only samples of these classes (None: all)
    seed: SeedField = 0

    @model_validator(mode="after")
    def _float32(self) -> ProtectConfig:
        check_float32_range(self)
        return self


class Protector(ABC):
    """A method that makes samples unlearnable. Subclasses set ``name``,
    ``description``, ``Config`` and implement ``generate``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[ProtectConfig]] = ProtectConfig

    def __init__(self, config: ProtectConfig, device: torch.device, precision: Precision = "fp32") -> None:
        self.config = config
        self.device = device
        self.precision = precision

    @abstractmethod
    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        """Perturb the samples of ``data`` at ``indices``."""


PROTECTORS: Registry[type[Protector]] = Registry("protection method")


def register_protector(cls: type[Protector]) -> type[Protector]:
    return PROTECTORS.register(cls.name)(cls)


def make_config(method: str, **options: object) -> ProtectConfig:
    """Validate ``options`` for ``method`` into its Config, with errors naming the option."""
    cls = PROTECTORS.get(method)
    config = validate_options(cls.Config, method, **options)
    if not 0 < config.budget <= 1:
        raise ConfigError(
            f"{method}: budget must be in (0, 1] (pixel scale; 8/255 = 0.0314), got {config.budget}"
        )
    if not 0 < config.fraction <= 1:
        raise ConfigError(f"{method}: fraction must be in (0, 1], got {config.fraction}")
    return config


def select_indices(data: ImageSet, config: ProtectConfig) -> torch.Tensor:
    """The samples to perturb: those of ``config.classes``, thinned to ``config.fraction``."""
    if config.classes is not None:
        bad = [c for c in config.classes if not 0 <= c < data.num_classes]
        if bad:
            raise ConfigError(f"classes {bad} are outside {data.name}'s classes 0..{data.num_classes - 1}")
        eligible = torch.nonzero(torch.isin(data.labels, torch.tensor(config.classes))).flatten()
    else:
        eligible = torch.arange(len(data))
    if config.fraction < 1:
        generator = torch.Generator().manual_seed(config.seed)
        keep = round(config.fraction * len(eligible))
        eligible = torch.sort(eligible[torch.randperm(len(eligible), generator=generator)[:keep]]).values
    if len(eligible) == 0:
        raise ConfigError(
            f"no samples of {data.name} selected (classes {config.classes}, fraction {config.fraction})"
        )
    return eligible


def protect(
    method: str,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    **options: object,
) -> Perturbation:
    """Generate ``method``'s perturbation for ``data``. Nothing is written here;
    an interrupted call leaves nothing behind.

    Generation defaults to fp32: whether bf16 noise is as effective has not been
    measured yet (pass precision="auto" or "bf16" to opt in).
    """
    config = make_config(method, **options)
    protector = PROTECTORS.get(method)(config, torch.device(device), precision)
    return protector.generate(data, select_indices(data, config))
