"""Audit jobs on stored models: options (pydantic, hashed), runs, and cached reports.

Each job's identity is its options plus the content hashes of the audited model and
of every reference model; the report (report.json and PNG plots) is written
atomically under ``<artifacts>/audit/<hash>/`` and reused when it exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dememo.atomic import atomic_directory
from dememo.audit.certify import (
    CertifyResult,
    certify,
    check_probability,
    shifted_levels,
    transfer_probability,
)
from dememo.audit.mia import MIAResult, run_mia
from dememo.audit.montecarlo import METRICS, metric_value, noisy_metric
from dememo.audit.recovery import RecoveryResult, recovery_curve, table7_config
from dememo.audit.signals import model_signals
from dememo.audit.target import AuditTarget
from dememo.errors import ConfigError
from dememo.options import SeedField, check_float32_range
from dememo.store import ArtifactStore, canonical_json, config_hash

AUDIT_KIND = "audit"
REPORT = "report.json"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="after")
    def _float32(self) -> Frozen:
        check_float32_range(self)
        return self


def _radii(etas: tuple[float, ...]) -> tuple[float, ...]:
    """Radii eta: at least one, each finite and >= 0 (non-finite ones are refused by the model)."""
    if not etas:
        raise ValueError("give at least one radius")
    bad = [e for e in etas if e < 0]
    if bad:
        raise ValueError(f"etas must be >= 0, got {bad}")
    return etas


OFFICIAL = "official"


class MIAOptions(Frozen):
    """``max_shadow``: random shadow samples a side (at most); None: the official selection
    of Unlearn-Sparse's SVC_MIA (``official_shadow``). ``shadow``: the shadow members' pixels,
    the retain set as the model trained on it (the official code's) or its clean counterparts."""

    target_class: int | None = None
    max_shadow: int | None = Field(2000, ge=2)
    shadow: Literal["as-trained", "clean"] = "as-trained"
    seed: SeedField = 0

    def describe_shadow(self) -> str:
        count = "official selection" if self.max_shadow is None else f"at most {self.max_shadow} a side"
        return f"{self.shadow} shadow members, {count}"


def official_shadow(retain_index: torch.Tensor, test_size: int) -> torch.Tensor:
    """Unlearn-Sparse's SVC_MIA shadow members: the first len(test) retain samples in training
    order (10,000 on CIFAR-10), fit against the test set (Jia et al. 2023, main_forget.py)."""
    return torch.sort(retain_index.long()).values[:test_size]


class RecoverOptions(Frozen):
    target_class: int | None = None
    etas: tuple[float, ...] = (0.0, 0.2, 0.4, 0.8, 1.6)
    attack_fraction: float = Field(0.1, gt=0, le=1)
    projection: Literal["ball", "sphere"] = "ball"
    batchnorm: Literal["freeze", "update"] = "freeze"
    epochs: int | None = Field(None, ge=1, description="override Table 7's epochs")
    seed: SeedField = 0

    _etas = field_validator("etas")(_radii)


class CertifyOptions(Frozen):
    target_class: int | None = None
    metric: str = "accuracy"
    sigma: float = 0.01
    q: float = 0.7
    alpha: float = 0.01
    samples: int = Field(256, ge=1)
    # Largest eta 0.75 sigma, so that with Theorem 2's 2*eta row (1.5 sigma: q_upper 0.9785)
    # N = 256 samples still bound both sides at alpha 0.01 (the upper side needs N >= 212).
    etas: tuple[float, ...] = (0.0, 0.0025, 0.005, 0.0075)
    epsilon: float = Field(1.0, ge=0)
    zeta: float = 0.01
    chunk: int = Field(16, ge=1)
    seed: SeedField = 0

    _etas = field_validator("etas")(_radii)


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def cached_report(
    store: ArtifactStore,
    identity: dict[str, Any],
    run: Callable[[], dict[str, Any]],
) -> tuple[Path, dict[str, Any], bool]:
    """Reuse ``<store>/audit/<hash>/report.json`` or run the job and write it with its plots.

    ``run`` returns {"report": {...}, "plots": {file name: result with .plot(path)}}.
    """
    final = store.path_for(AUDIT_KIND, identity)
    if (final / REPORT).is_file():
        return final, json.loads((final / REPORT).read_text()), True
    produced = run()
    report = _finite({"identity": json.loads(canonical_json(identity)), "hash": config_hash(identity),
                      **produced["report"]})  # fmt: skip
    with atomic_directory(final) as tmp:
        for name, result in produced.get("plots", {}).items():
            result.plot(tmp / name)
        (tmp / REPORT).write_text(json.dumps(report, indent=2))
    return final, report, False


def mia_job(
    target: AuditTarget, options: MIAOptions, device: torch.device, references: Sequence[AuditTarget] = ()
) -> MIAResult:
    """All MIAs on ``target``; ``references`` (models that trained on neither the target set
    nor its unseen test samples, e.g. RT for a forgotten class) enable offline LiRA."""
    sets = target.sets(options.target_class, options.seed)
    pixels = target.training_pixels(options.shadow)
    retain = sets.retain_index
    if options.max_shadow is None:
        retain = official_shadow(retain, len(target.test))
    pixel_name = options.shadow if target.protected else "as-trained (clean: unprotected model)"
    shadow_members = pixels.subset(retain, f"retain (train, {pixel_name})")

    def signals(data, model=target.model):
        return model_signals(model, data, device=device)

    pairs = [(signals(sets.target, r.model), signals(sets.unseen, r.model)) for r in references]

    result = run_mia(signals(sets.target), signals(sets.unseen), signals(shadow_members),
                     signals(sets.unseen_rest),
                     name=f"{target.name}: {sets.target.name}", references=pairs,
                     max_shadow=options.max_shadow, seed=options.seed)  # fmt: skip
    selection = (
        "official: the first len(test) retain samples vs the test samples outside the unseen set"
        if options.max_shadow is None
        else f"random, at most {options.max_shadow} a side"
    )
    result.shadow.update({"pixels": pixel_name, "selection": selection})
    return result


def recover_job(
    target: AuditTarget, references: dict[str, AuditTarget], options: RecoverOptions, device: torch.device
) -> RecoveryResult:
    sets = target.sets(options.target_class, options.seed)
    pool = sets.class_train
    count = max(1, round(options.attack_fraction * len(pool)))
    pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(options.seed))[:count]
    attack = pool.subset(torch.sort(pick).values, f"{100 * options.attack_fraction:g}% of {pool.name}")
    overrides: dict[str, object] = {"projection": options.projection, "batchnorm": options.batchnorm,
                                    "seed": options.seed}  # fmt: skip
    if options.epochs is not None:
        overrides["epochs"] = options.epochs
    config = table7_config(target.config["dataset"], **overrides)
    for name, ref in references.items():
        if (
            ref.train.num_classes != target.train.num_classes
            or ref.config["dataset"] != target.config["dataset"]
        ):
            raise ConfigError(f"reference {name!r} is not a model of {target.config['dataset']}")
    models = {"audited": target.model} | {name: ref.model for name, ref in references.items()}
    control = sets.unseen_rest if len(sets.class_test) < len(target.test) else None
    return recovery_curve(
        models, attack, sets.class_test, options.etas, config, device=device, control=control
    )


def certify_job(
    target: AuditTarget, runs: list[AuditTarget], options: CertifyOptions, device: torch.device
) -> CertifyResult:
    METRICS.get(options.metric)
    check_probability("alpha", options.alpha)
    for eta in options.etas:
        shifted_levels(options.q, eta, options.sigma)  # names a bad q, sigma or eta before sampling
    data = target.sets(options.target_class, options.seed).class_test
    etas = list(options.etas)
    if runs and 2 * max(etas) not in etas:  # the radius Theorem 2's bounds transfer at (FACTS 4.2)
        etas.append(2 * max(etas))
    samples = noisy_metric(target.model, data, sigma=options.sigma, n=options.samples, metric=options.metric,
                           chunk=options.chunk, seed=options.seed, device=device)  # fmt: skip
    result = certify(samples, etas, metric=options.metric, target_set=data.name,
                     clean_value=metric_value(target.model, data, options.metric, device),
                     q=options.q, sigma=options.sigma, alpha=options.alpha)  # fmt: skip
    result.notes.append(f"noise N(0, {options.sigma:g}^2 I) on all trainable parameters; buffers fixed")
    if runs:
        eta = max(options.etas)
        result.transfer = transfer_probability(target.model, [r.model for r in runs], eta=eta,
                                               epsilon=options.epsilon, zeta=options.zeta,
                                               alpha=options.alpha)  # fmt: skip
        result.notes.append(f"Theorem 2 at eta {eta:g}: {result.transfer.note}; its bounds are the "
                            f"Theorem 1 row at eta {2 * eta:g}")  # fmt: skip
    return result


AuditOptions = MIAOptions | RecoverOptions | CertifyOptions
AUDIT_OPTIONS: dict[str, type[Frozen]] = {
    "mia": MIAOptions,
    "recover": RecoverOptions,
    "certify": CertifyOptions,
}


def audit_identity(job: str, target: AuditTarget, options: Frozen, others: dict[str, AuditTarget]) -> dict:
    """What names an audit report: the job, the audited model's content, the options and
    every other model involved (references, Theorem 2 runs) by role and content."""
    return {"job": job, **target.identity, "options": options.model_dump(mode="json"),
            **{role: other.content for role, other in others.items()}}  # fmt: skip


def produce(
    job: str, target: AuditTarget, options: Frozen, device: torch.device, others: dict[str, AuditTarget]
) -> dict[str, Any]:
    """Run one audit job: {"report": {job section}, "plots": {file: result}}. ``others``:
    recovery references by name, LiRA references ('lira<i>') or Theorem 2 runs ('run<i>')."""
    if job == "mia":
        result, section, plot = mia_job(target, options, device, list(others.values())), "mia", "mia-roc"
    elif job == "recover":
        result, section, plot = recover_job(target, others, options, device), "recovery", "recovery"
    elif job == "certify":
        result, section, plot = (
            certify_job(target, list(others.values()), options, device),
            "certify",
            "certify",
        )
    else:
        raise ConfigError(f"unknown audit job {job!r}; valid: {', '.join(AUDIT_OPTIONS)}")
    return {"report": {section: result.to_dict()}, "plots": {f"{plot}.png": result}}


def audit_or_load(
    store: ArtifactStore,
    job: str,
    target: AuditTarget,
    options: Frozen,
    device: torch.device,
    others: dict[str, AuditTarget] | None = None,
) -> tuple[Path, dict[str, Any], bool]:
    """The cached report of one audit job on ``target`` (run and written atomically if absent)."""
    others = others or {}
    identity = audit_identity(job, target, options, others)
    return cached_report(store, identity, lambda: produce(job, target, options, device, others))
