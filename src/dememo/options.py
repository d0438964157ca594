"""Option models validated in one place: a pydantic error becomes one ConfigError line naming the option.

Every option model (unlearning, protection, text protection, LM unlearning, audit jobs) is built
through ``validate_options``, so a bad value is refused the same way wherever it comes from.
Seeds are checked here too: torch and numpy take seeds in [0, 2**63).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from dememo.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)

SEED_LIMIT = 2**63
SeedField = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
"""A seed torch.Generator.manual_seed and numpy accept: 0 <= seed < 2**63."""


FLOAT32_MAX = 3.4028234663852886e38


def check_float32_range(model: BaseModel) -> None:
    """Raise ValueError naming the first float option (also inside tuples and lists) beyond the
    float32 range: the maths runs in float32, where 1e308 is infinity (torch raises deep inside
    an optimizer step). Used by the option models' ``model_validator``s."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, float) and abs(item) > FLOAT32_MAX:
                raise ValueError(f"{name} = {item:g} is beyond the float32 range (|x| <= {FLOAT32_MAX:.4g})")


def describe(error: ValidationError) -> str:
    """'field: message; field: message' for every problem in ``error``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors())


def validate_options(cls: type[ModelT], what: str, **options: Any) -> ModelT:
    """``cls(**options)``; a validation error is a ConfigError '<what>: invalid options (...)'."""
    try:
        return cls(**options)
    except ValidationError as error:
        raise ConfigError(f"{what}: invalid options ({describe(error)})") from None
