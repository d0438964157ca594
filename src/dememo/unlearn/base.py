"""The Unlearner protocol, its registry, the checks on forget/retain sets, and ``unlearn``."""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from dememo.data.augment import Augment
from dememo.data.imageset import ImageSet
from dememo.errors import ConfigError
from dememo.options import SeedField, check_float32_range, validate_options
from dememo.registry import Registry
from dememo.runtime import Precision


class UnlearnConfig(BaseModel):
    """Options every unlearner takes. Subclasses add the method's own."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    seed: SeedField = 0
    batch_size: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _float32(self) -> UnlearnConfig:
        check_float32_range(self)
        return self


class AugmentingConfig(UnlearnConfig):
    """Options of a method that reads training images through augmentation (FT, GA, IF).

    ``augment``: true (the default) is the parent recipe's augmentation, which
    ``unlearn_or_load`` fills in from the parent model before the options are hashed, as
    the official unlearning code (OPTML-Group Unlearn-Sparse / Unlearn-Saliency) feeds
    the unlearning loaders the training transforms; false is none; or an Augment. An
    inactive Augment is stored as false, so equal augmentation gives equal artifact keys.
    """

    augment: bool | Augment = True

    @field_validator("augment")
    @classmethod
    def _canonical(cls, value: bool | Augment) -> bool | Augment:
        return False if isinstance(value, Augment) and not value.active else value

    def augmentation(self, method: str) -> Augment | None:
        """The Augment to apply, or None; refuses the unresolved 'parent' (true)."""
        if self.augment is True:
            raise ConfigError(
                f"{method}: augment=true means the parent recipe's augmentation, which only "
                "unlearn_or_load knows; give augment=false or an Augment when calling unlearn directly"
            )
        return self.augment or None


@dataclass
class Work:
    """What an unlearner did: optimizer steps, per-sample gradient evaluations, the
    subsets it read, and method-specific details (e.g. the certified guarantee)."""

    steps: int = 0
    sample_gradients: int = 0
    touched: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnlearnRecord:
    method: str
    options: dict[str, Any]
    seconds: float
    steps: int
    sample_gradients: int
    touched: tuple[str, ...]
    forget_size: int
    retain_size: int
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "touched": list(self.touched)}


@dataclass
class Unlearned:
    model: nn.Module
    record: UnlearnRecord


class Unlearner(ABC):
    """A method that removes the forget set's influence from a trained model.

    Subclasses set ``name``, ``description``, ``Config`` and ``scale_option`` (the
    option that the paper's small/large scale sets: a learning rate or alpha);
    ``single_model`` is False for methods whose model is not one network (SISA's
    ensemble), which the artifact jobs and the CLI do not run; ``trains_on_retain``
    is True for methods that learn from the retain set (``check_sets`` refuses an
    empty one for them: FT would return the parent untouched as "unlearned").
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[UnlearnConfig]] = UnlearnConfig
    scale_option: ClassVar[str | None] = None
    single_model: ClassVar[bool] = True
    trains_on_retain: ClassVar[bool] = False  # an empty retain set leaves it nothing to do

    def __init__(self, config: UnlearnConfig, device: torch.device, precision: Precision = "fp32") -> None:
        self.config = config
        self.device = device
        self.precision = precision

    @abstractmethod
    def run(self, model: nn.Module, data: ImageSet, forget: torch.Tensor, retain: torch.Tensor) -> Work:
        """Unlearn in place: ``forget`` and ``retain`` index ``data`` (the training set)."""


UNLEARNERS: Registry[type[Unlearner]] = Registry("unlearning method")


def register_unlearner(cls: type[Unlearner]) -> type[Unlearner]:
    return UNLEARNERS.register(cls.name)(cls)


def make_config(method: str, **options: object) -> UnlearnConfig:
    """Validate ``options`` into ``method``'s Config, with errors naming the option."""
    cls = UNLEARNERS.get(method)
    config = validate_options(cls.Config, method, **options)
    check = getattr(config, "check", None)
    if check is not None:
        check()
    return config


def index_tensor(value: object, name: str) -> torch.Tensor:
    """``value`` (a tensor, array or sequence of integers) as a flat int64 tensor; floats and
    booleans are refused, never truncated (``[1.5, 2.7]`` is not samples 1 and 2)."""
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        items = list(value) if isinstance(value, list | tuple | range) else None
        if items is not None and any(isinstance(v, bool) or not isinstance(v, int) for v in items):
            bad = next(v for v in items if isinstance(v, bool) or not isinstance(v, int))
            raise ConfigError(f"{name} set: indices must be integers, got {bad!r}")
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise ConfigError(f"{name} set: indices must be integers ({error})") from None
    if tensor.numel() and (tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex()):
        raise ConfigError(f"{name} set: indices must be integers, got a {tensor.dtype} tensor")
    return tensor.to(torch.int64).flatten()


def check_sets(
    data: ImageSet, forget: object, retain: object, method: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted int64 index tensors; refuses non-integer indices, an empty forget set, indices
    outside ``data``, duplicates, a forget set that overlaps the retain set and, for a
    ``method`` that trains on the retain set, an empty retain set."""
    checked = []
    for name, value in (("forget", forget), ("retain", retain)):
        index = index_tensor(value, name)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(data)):
            raise ConfigError(f"{name} set: indices must lie in [0, {len(data) - 1}] ({data.name})")
        unique = torch.unique(index)
        if len(unique) != len(index):
            raise ConfigError(f"{name} set: {len(index) - len(unique)} duplicate indices")
        checked.append(unique)
    forget_index, retain_index = checked
    if len(forget_index) == 0:
        raise ConfigError("forget set is empty: nothing to unlearn")
    overlap = int(torch.isin(forget_index, retain_index).sum())
    if overlap:
        raise ConfigError(f"forget and retain sets overlap in {overlap} samples")
    if method is not None and len(retain_index) == 0 and UNLEARNERS.get(method).trains_on_retain:
        raise ConfigError(f"{method}: the retain set is empty ({len(forget_index)} of {len(data)} samples "
                          f"to forget); {method} trains on the retain set, so there is nothing to unlearn "
                          f"with")  # fmt: skip
    return forget_index, retain_index


def unlearn(
    method: str,
    model: nn.Module,
    data: ImageSet,
    forget: object,
    retain: object,
    *,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
    **options: object,
) -> Unlearned:
    """Remove ``data[forget]`` from ``model`` with ``method``; ``model`` itself is not changed.

    Returns a copy of the model, unlearned and on the CPU, and a record of the work.
    """
    config = make_config(method, **options)
    forget_index, retain_index = check_sets(data, forget, retain, method)
    unlearner = UNLEARNERS.get(method)(config, torch.device(device), precision)
    model = copy.deepcopy(model)
    started = time.perf_counter()
    work = unlearner.run(model, data, forget_index, retain_index)
    seconds = time.perf_counter() - started
    model.to("cpu", memory_format=torch.contiguous_format)
    record = UnlearnRecord(
        method, config.model_dump(mode="json"), seconds, work.steps, work.sample_gradients,
        work.touched, len(forget_index), len(retain_index), work.details,
    )  # fmt: skip
    return Unlearned(model, record)
