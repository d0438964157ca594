"""Text protectors: a sibling of ``dememo.protect`` for text.

The image protocol (``Protector.generate(ImageSet, indices) -> Perturbation`` of pixel
values) cannot hold word edits, so text methods have their own small protocol and
registry: a protector maps (texts, labels) to protected texts plus what it did.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from dememo.errors import DataError
from dememo.options import SeedField, validate_options
from dememo.registry import Registry


class TextProtectConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: SeedField = 0


@dataclass
class ProtectedText:
    texts: list[str]
    edits: list[int]  # words inserted or replaced per text
    details: dict[str, Any] = field(default_factory=dict)


class TextProtector(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[TextProtectConfig]] = TextProtectConfig

    def __init__(self, config: TextProtectConfig) -> None:
        self.config = config

    @abstractmethod
    def protect(self, texts: list[str], labels: list[int]) -> ProtectedText:
        """Protected versions of ``texts`` (same order); ``labels`` are their classes."""


TEXT_PROTECTORS: Registry[type[TextProtector]] = Registry("text protection method")


def register_text_protector(cls: type[TextProtector]) -> type[TextProtector]:
    return TEXT_PROTECTORS.register(cls.name)(cls)


def protect_text(method: str, texts: list[str], labels: list[int], **options: object) -> ProtectedText:
    """Validate ``options`` for ``method`` and protect ``texts``."""
    cls = TEXT_PROTECTORS.get(method)
    config = validate_options(cls.Config, method, **options)
    if len(texts) != len(labels):
        raise DataError(f"{method}: {len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise DataError(f"{method}: no texts to protect")
    return cls(config).protect(list(texts), list(labels))
