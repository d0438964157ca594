"""The audit stage: how deep a model's forgetting goes (dememo.audit), or its accuracy on
a forgetting target's evaluation sets.

Config: the job (mia, recover, certify or accuracy), its options (dememo.audit.jobs),
and optionally a scenario target (scenario settings, class, forget set) that names the
audited set, so a Before model is audited on the set its unlearned children forgot.
Inputs: 'model' (a train or unlearn stage) and, for recover, other models by name
(references whose curves share the attack), for certify 'run<i>' (Theorem 2 runs).
Metrics are flat: ``svc_rate`` (on the target set) and ``svc_unseen_rate`` (on unseen test
samples held out of the SVC's fit) by signal, ``auc`` by attack; ``recovered_accuracy``,
``control_accuracy``, ``distance`` and ``radius_reached`` (1 if the ball bound the attack at
that eta, 0 if its budget ran out first: ``dememo.audit.recovery.radius_reached``) by
``eta=<value>``; ``certified_lower`` /
``certified_upper`` by eta (absent where Theorem 1 abstains); ``accuracy`` and its sample
size ``n`` by set name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dememo.audit.jobs import AUDIT_OPTIONS, audit_or_load
from dememo.audit.recovery import radius_reached
from dememo.audit.target import AuditTarget
from dememo.data.scenarios import ScenarioSettings
from dememo.errors import ConfigError
from dememo.experiments.stages import base
from dememo.pipeline import TrainConfig
from dememo.store import Artifact, ArtifactStore
from dememo.unlearn.jobs import parent_scenario
from dememo.unlearn.scenario_data import scenario_data

JOBS = (*AUDIT_OPTIONS, "accuracy")


def audit_stage(
    job: str,
    model: base.Stage,
    options: dict[str, Any] | None = None,
    *,
    scenario: ScenarioSettings | None = None,
    cls: int | None = None,
    part: str | None = None,
    others: dict[str, base.Stage] | None = None,
    label: str = "",
) -> base.Stage:
    """An audit of the model a train or unlearn stage made; with ``scenario``, ``cls`` and
    ``part`` the audited set is that forgetting target's (clean counterparts)."""
    if job not in JOBS:
        raise ConfigError(f"unknown audit job {job!r}; valid: {', '.join(JOBS)}")
    options = dict(options or {})
    if job != "accuracy":
        AUDIT_OPTIONS[job].model_validate(options)
    elif options:
        raise ConfigError("the accuracy audit takes no options")
    if (scenario is None) != (cls is None) or (job == "accuracy" and scenario is None):
        raise ConfigError(f"audit {job}: a scenario target needs scenario and class (accuracy needs both)")
    target = None
    if scenario is not None:
        target = {"scenario": scenario.model_dump(mode="json"), "cls": cls, "part": part}
    inputs = {"model": model.key} | {role: stage.key for role, stage in (others or {}).items()}
    config = {"job": job, "options": options, "target": target}
    return base.Stage("audit", config, inputs, label=f"audit {job} of {label or model.label}")


def _parent(artifact: Artifact, context: base.StageContext) -> Artifact:
    """The Before model behind a model artifact (itself) or an unlearned one (its parent)."""
    if artifact.manifest["kind"] == "model":
        return artifact
    return ArtifactStore.load_path(context.artifacts / "model" / artifact.manifest["config"]["parent"])


def _metrics(job: str, report: dict[str, Any]) -> base.Metrics:
    metrics: base.Metrics = {}
    if job == "mia":
        metrics.update({("svc_rate", signal): rate for signal, rate in report["mia"]["svc_rates"].items()})
        unseen = report["mia"].get("unseen_rates", {})
        metrics.update({("svc_unseen_rate", signal): rate for signal, rate in unseen.items()})
        metrics.update({("auc", roc["attack"]): roc["auc"] for roc in report["mia"]["rocs"]})
    elif job == "recover":
        for curve in report["recovery"]["curves"]:
            suffix = "" if curve["name"] == "audited" else f"/{curve['name']}"
            # reports written before issue 17 have no 'reached': decided by the distance alone
            reached = curve.get("reached") or [
                radius_reached(d, e) for d, e in zip(curve["distance"], curve["etas"], strict=True)
            ]
            for index, eta in enumerate(curve["etas"]):
                where = f"eta={eta:g}"
                metrics[(f"recovered_accuracy{suffix}", where)] = curve["accuracy"][index]
                metrics[(f"distance{suffix}", where)] = curve["distance"][index]
                metrics[(f"radius_reached{suffix}", where)] = float(bool(reached[index]))
                if curve["control_accuracy"]:
                    metrics[(f"control_accuracy{suffix}", where)] = curve["control_accuracy"][index]
    elif job == "certify":
        metrics[("clean_value", "")] = report["certify"]["clean_value"]
        for bound in report["certify"]["bounds"]:
            for side in ("lower", "upper"):
                if isinstance(bound[side], int | float):
                    metrics[(f"certified_{side}", f"eta={bound['eta']:g}")] = bound[side]
        if report["certify"]["transfer"]:
            metrics[("transfer_probability", "")] = report["certify"]["transfer"]["probability"]
    return metrics


@base.register_stage_kind
class Audit(base.StageKind):
    name = "audit"

    def run(self, config: base.Config, inputs: base.Inputs, context: base.StageContext) -> base.StageOutput:
        stored = context.load(inputs["model"])
        parent = _parent(stored, context)
        dataset = context.dataset(TrainConfig.model_validate(parent.manifest["config"]).dataset)
        device = context.torch_device
        target_spec, job = config["target"], config["job"]
        forget, settings = None, None
        if target_spec is not None:
            settings = ScenarioSettings.model_validate(target_spec["scenario"])
            if job == "accuracy":  # the released pixels are needed only to measure accuracy on them
                data = scenario_data(parent, dataset, context.store, settings)
                target = data.scenario.target(target_spec["cls"], target_spec["part"])
                model = AuditTarget.from_artifact(stored, dataset=dataset).model
                values = data.evaluate(model, target, device)
                metrics = {("accuracy", name): v for name, v in values.items()}
                metrics.update({("n", e.name): float(len(e.indices)) for e in target.evals})  # sample sizes
                return context.output(stored.path, metrics)
            scenario = parent_scenario(parent, dataset, settings)
            if scenario is None:
                raise ConfigError(
                    f"{parent.path}: not trained in a scenario (no protected positions recorded)"
                )
            forget = scenario.target(target_spec["cls"], target_spec["part"])
        options = AUDIT_OPTIONS[job].model_validate(config["options"])
        # the MIA's shadow members may take the pixels the model trained on (protected ones)
        pixels = getattr(options, "shadow", None) == "as-trained"
        target = AuditTarget.from_artifact(stored, dataset=dataset, store=context.store if pixels else None,
                                           scenario=settings)  # fmt: skip
        if forget is not None:
            target = dataclasses.replace(target, forget=forget.forget, retain=forget.retain)
        others = {
            role: AuditTarget.from_artifact(context.artifacts / output.artifact, dataset=dataset)
            for role, output in inputs.items()
            if role != "model"
        }
        path, report, _ = audit_or_load(context.store, job, target, options, device, others)
        return context.output(path, _metrics(job, report))
