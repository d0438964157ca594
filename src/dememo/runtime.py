"""Device, numeric precision (bf16 autocast where it pays off), memory format, seeding."""

from __future__ import annotations

import contextlib
import random
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dememo.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16"]
ResolvedPrecision = Literal["fp32", "bf16"]


def resolve_device(device: str | None = None) -> torch.device:
    """'auto' (or None) picks CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from error
    if resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}; use auto, cpu or cuda[:N]")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return resolved


@cache
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(device: torch.device, precision: Precision) -> bool:
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown precision {precision!r}; valid: auto, bf16, fp32")
    if precision == "auto":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())
    return precision == "bf16"


def resolve_precision(device: torch.device | str, precision: Precision) -> ResolvedPrecision:
    """What ``precision`` means on ``device``: 'auto' becomes 'bf16' or 'fp32'.

    Artifacts record and are keyed by the resolved value, so a model trained in bf16 on
    one machine is never served as the fp32 one on another.
    """
    return "bf16" if use_bf16(torch.device(device), precision) else "fp32"


def autocast(device: torch.device, precision: Precision):
    """bf16 autocast when ``use_bf16``; otherwise a no-op context."""
    if use_bf16(device, precision):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# channels_last measured faster on every device tried, fp32 included: on the 2-core AVX2 CPU,
# fastnet training 1.25x and input-gradient steps 1.3x, tinycnn input-gradient steps 1.8x
# (docs/benchmarks.md). Models and batches are kept in this format.
MEMORY_FORMAT = torch.channels_last


def channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in the memory format models run in (4-d tensors only)."""
    return tensor.contiguous(memory_format=MEMORY_FORMAT) if tensor.dim() == 4 else tensor


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
