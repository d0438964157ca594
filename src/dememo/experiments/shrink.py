"""A spec's scale cut down to a few images and iterations: the same studies, stage kinds,
models, recipes and presets, run in seconds on a CPU (the gpu scale's tests, and
``benchmarks/gpu_check.py --tiny``).

Victims keep their architecture and recipe but train ``epochs`` epochs on ``train_per_class``
images a class; every protection, unlearning method and audit keeps its options but runs the
fewest iterations its loop allows (``TINY_PROTECT``, ``TINY_UNLEARN``, ``TINY_AUDITS``).
``fields`` replace top-level settings (e.g. ``seeds=[0]``, ``protections=["ue-s"]``), as
``with_fields`` does without cutting anything. Specs of the interplay-levels study (Table 5) plan
other specs by name; shrink those instead.
"""

from __future__ import annotations

import copy
from typing import Any

from dememo.errors import ConfigError
from dememo.experiments.spec import Spec

TINY_PROTECT: dict[str, dict[str, Any]] = {
    "ue-s": {"max_rounds": 1, "train_steps": 1, "pgd_steps": 1},
    "ue-c": {"max_rounds": 1, "train_steps": 1},
    "pue": {"max_rounds": 1, "train_steps": 1, "train_draws": 1, "noise_draws": 1},
    "tap": {"steps": 1, "surrogate_epochs": 1},
    "tue": {"rounds": 1, "pgd_steps": 1},
}
TINY_UNLEARN: dict[str, dict[str, Any]] = {
    "ft": {"epochs": 1},
    "ga": {"epochs": 1},
    "if": {"fisher_samples": 8},
}
TINY_AUDITS: dict[str, dict[str, Any]] = {"mia": {"max_shadow": 8}, "recover": {"epochs": 1},
                                          "certify": {"samples": 8}}  # fmt: skip


def merged(options: dict[str, dict[str, Any]], tiny: dict[str, dict[str, Any]], names: list[str]) -> dict:
    return {**options, **{name: {**options.get(name, {}), **tiny.get(name, {})} for name in names}}


def with_fields(spec: Spec, scale: str, **fields: Any) -> Spec:
    """``spec`` with top-level settings of ``scale`` replaced (validated when planned)."""
    block = {**copy.deepcopy(spec.scales[scale]), **fields}
    return spec.model_copy(update={"scales": {**spec.scales, scale: block}})


def shrunk(spec: Spec, scale: str, *, train_per_class: int, test_per_class: int, epochs: int = 1,
           **fields: Any) -> Spec:  # fmt: skip
    """``spec`` whose ``scale`` is cut down (see the module docstring)."""
    if spec.study == "interplay-levels":
        raise ConfigError(f"{spec.name}: plans the specs {spec.scales[scale]['specs']}; shrink those instead")
    block = with_fields(spec, scale, **fields).scales[scale]
    sizes = {"train_per_class": train_per_class, "test_per_class": test_per_class, "epochs": epochs}
    if "victims" in block:  # protect-eval and recovery-protected
        block["victims"] = [{**victim, **sizes} for victim in block["victims"]]
        block["options"] = merged(block.get("options", {}), TINY_PROTECT, block["methods"])
    else:  # interplay
        block["victim"] = {**block["victim"], **sizes}
        protect = block.get("protect_options", {})
        block["protect_options"] = merged(protect, TINY_PROTECT, block["protections"])
        block["method_options"] = merged(block.get("method_options", {}), TINY_UNLEARN, list(TINY_UNLEARN))
    for audit, tiny in TINY_AUDITS.items():
        if block.get(audit) is not None:
            block[audit] = {**block[audit], **tiny}
    return spec.model_copy(update={"scales": {**spec.scales, scale: block}})
