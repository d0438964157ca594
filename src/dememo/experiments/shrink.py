"""A spec's scale cut down to a few images and iterations: the same studies, stage kinds,
models, recipes and presets, run in seconds on a CPU (the gpu scale's tests, and
``benchmarks/gpu_check.py --tiny``).

Victims keep their architecture and recipe but train ``epochs`` epochs on ``train_per_class``
images a class; every protection, unlearning method and audit keeps its options but runs the
fewest iterations its loop allows (``TINY_PROTECT``, ``TINY_UNLEARN``, ``TINY_AUDITS``).
``fields`` replace top-level settings (e.g. ``seeds=[0]``, ``protections=["ue-s"]``), as
``with_fields`` does without cutting anything. Specs of the interplay-levels study (Table 5) plan
other specs by name; shrink those instead.

The llm study keeps its stage kinds, tasks, recipes' batch sizes and learning rates, unlearning
methods, radii and scoring rule, but swaps the pretrained LM for the smoke scale's tiny random
Llama (``TINY_LM``: no download, no GGUF file) with its last layer trained from cached inputs, on
``train_per_class`` / ``test_per_class`` examples a task (at least 2) of 12 words, ``epochs``
epochs of fine-tuning and one of everything else.
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
TINY_LM: dict[str, Any] = {"model": "tiny:16x2", "train_layers": 1, "max_words": 12}  # the smoke scale's


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
    if spec.study == "llm":
        block = shrunk_llm(block, train_per_class, test_per_class, epochs)
        return spec.model_copy(update={"scales": {**spec.scales, scale: block}})
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


def shrunk_llm(block: dict[str, Any], train: int, test: int, epochs: int) -> dict[str, Any]:
    """An llm scale's settings cut down (see the module docstring)."""
    train, test = max(2, train), max(2, test)
    unlearn = {method: {**options, "epochs": 1} if method != "rt" else options
               for method, options in block.get("unlearn", {}).items()}  # fmt: skip
    return {**block, **TINY_LM, "train_per_task": train, "test_per_task": test, "unlearn": unlearn,
            "recipe": {**block["recipe"], "epochs": epochs}, "recovery": {**block["recovery"], "epochs": 1},
            "attack_per_task": min(block.get("attack_per_task", 8), train)}  # fmt: skip
