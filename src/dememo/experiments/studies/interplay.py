"""The interplay study (section 6.2): unlearning from models trained on partly protected
data, with the audits of its forgetting depth (Tables 10-25, Figures 2, 5-8, 10-18).

Per protection: a protect stage (the scenario's classes at class level), the Before
model trained on the scenario's release, and per forgetting target (class, Du or Dc)
an accuracy audit of Before and one unlearn stage per row (RT, IF/FT/GA at each
scale). Optional audits on every model of a target: MIA on the forgotten set's clean
counterparts, a recovery curve on the forgotten class, Theorem 1 bounds. With
``clean_reference`` a model trained on clean data joins the recovery curves (the
"clean" curve of Figures 2 and 10).

Labels of every planned stage: protection, level, cls, part, row (RT, IF_small, ...,
Before, clean), role (protect, train, unlearn, accuracy, mia, recover, certify) and seed. With
``certify_runs`` RT retrains with other seeds (role reference) feed every certify audit
of their target as Theorem 2's reference-mechanism runs.

``seeds`` repeats the whole plan per seed (default: ``[seed]``): the victim's training, the
protection, the unlearning runs and the audits take that seed; the scenario (which classes
and positions are protected) stays the one of ``seed``, so every seed answers the same
question. The stages of ``seed`` itself are exactly the single-seed plan's (same keys).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dememo.data.scenarios import ScenarioSettings
from dememo.data.sources import DATASETS
from dememo.experiments.stages import Stage
from dememo.experiments.stages.audit import audit_stage
from dememo.experiments.stages.protect import protect_stage
from dememo.experiments.stages.train import train_stage
from dememo.experiments.stages.unlearn import unlearn_stage
from dememo.experiments.studies.base import Planned, Study, register_study
from dememo.experiments.studies.common import Victim, known, known_preset
from dememo.pipeline import TrainConfig
from dememo.protect import PROTECTORS
from dememo.protect.presets import preset_options
from dememo.unlearn.base import UNLEARNERS
from dememo.unlearn.settings import SCALES, paper_scale

ROW_ORDER = ("RT", "IF_small", "IF_large", "FT_small", "FT_large", "GA_small", "GA_large", "Before", "clean")


def row_label(method: str, scale: str | None) -> str:
    return "RT" if scale is None else f"{method.upper()}_{scale}"


class InterplaySettings(BaseModel):
    """One scale of an interplay spec. Audits are off unless their options block is given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notes: str = ""
    victim: Victim
    seed: int = 0
    seeds: list[int] | None = Field(
        None, min_length=1, description="repeat the plan per seed (default [seed]); the scenario keeps seed"
    )
    level: Literal["class", "subset"]
    scenario: dict[str, Any] = Field({}, description="ScenarioSettings beyond level and seed")
    protections: list[str] = Field(min_length=1)
    preset: str = "paper"
    protect_options: dict[str, dict[str, Any]] = {}
    classes: list[int] = Field(min_length=1)
    methods: list[str] = ["rt", "if", "ft", "ga"]
    scales: list[Literal["small", "large"]] = list(SCALES)
    scale_values: dict[str, dict[str, float]] = Field(
        {}, description="method -> scale -> value, replacing the paper's Tables 8-9 values"
    )
    method_options: dict[str, dict[str, Any]] = {}
    mia: dict[str, Any] | None = None  # MIAOptions without target_class
    recover: dict[str, Any] | None = None  # RecoverOptions without target_class
    recover_classes: list[int] | None = None  # default: every class of ``classes``
    certify: dict[str, Any] | None = None  # CertifyOptions without target_class
    certify_runs: int = Field(
        0, ge=0, description="Theorem 2: RT retrains with seeds seed+1.. (reference runs)"
    )
    clean_reference: bool = False

    _protections = field_validator("protections")(lambda cls, v: [known(PROTECTORS, m) for m in v])
    _methods = field_validator("methods")(lambda cls, v: [known(UNLEARNERS, m) for m in v])

    _preset = field_validator("preset")(lambda cls, v: known_preset(v))

    @model_validator(mode="after")
    def _consistent(self) -> InterplaySettings:
        self.scenario_settings()  # unknown scenario keys fail here
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        for block in (self.mia, self.recover, self.certify):
            if block and "target_class" in block:
                raise ValueError("audit options take no target_class: the study sets it per target")
        if self.certify_runs and self.certify is None:
            raise ValueError("certify_runs (Theorem 2) needs a certify block")
        count = DATASETS.get(self.victim.dataset).num_classes if self.victim.dataset in DATASETS else None
        outside = sorted(c for c in self.classes if c < 0 or (count is not None and c >= count))
        if outside:
            valid = f"0-{count - 1}" if count is not None else ">= 0"
            raise ValueError(f"classes {outside} are not classes of {self.victim.dataset} (valid: {valid})")
        unplanned = set(self.recover_classes or ()) - set(self.classes)
        if unplanned:
            raise ValueError(f"recover_classes {sorted(unplanned)} are not in classes {self.classes}")
        return self

    def seed_list(self) -> list[int]:
        """The seeds the plan repeats over (``seeds``, or the one ``seed``)."""
        return list(self.seeds) if self.seeds else [self.seed]

    def seeded(self, options: dict[str, Any] | None, seed: int) -> dict[str, Any] | None:
        """Options of an unlearning run or audit for ``seed``: unchanged for the base seed (its
        stages keep their keys), else with that seed."""
        if options is None or seed == self.seed:
            return options
        return {**options, "seed": seed}

    def scenario_settings(self) -> ScenarioSettings:
        return ScenarioSettings(level=self.level, seed=self.seed, **self.scenario)

    def protect_options_for(self, method: str, seed: int | None = None) -> dict[str, Any]:
        options = preset_options(self.preset).get(method, {})
        options.update(self.protect_options.get(method, {}))
        if self.level == "class":
            options["classes"] = list(self.scenario_settings().protected_classes)
        return {**options, "seed": self.seed if seed is None else seed}

    def train_config(self, seed: int | None = None) -> TrainConfig:
        victim = self.victim
        return TrainConfig(dataset=victim.dataset, model=victim.model, recipe=victim.recipe_for(True),
                           seed=self.seed if seed is None else seed, train_per_class=victim.train_per_class,
                           test_per_class=victim.test_per_class, precision=victim.precision)  # fmt: skip

    def rows(self, protection: str, part: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(row label, method, options) of every unlearning run of one forgetting target."""
        rows = []
        for method in self.methods:
            options = dict(self.method_options.get(method, {}))
            if method == "rt":
                rows.append(("RT", method, options))
                continue
            for scale in self.scales:
                value = self.scale_values.get(method, {}).get(scale)
                if value is None:
                    value = paper_scale(protection, self.level, method, scale, part)
                option = UNLEARNERS.get(method).scale_option
                rows.append((row_label(method, scale), method, {**options, option: value}))
        return rows


def _parts(settings: InterplaySettings, cls: int) -> tuple[str, ...]:
    if settings.level == "subset":
        return ("Du", "Dc")
    return ("Du",) if cls in settings.scenario_settings().protected_classes else ("Dc",)


@register_study
class Interplay(Study):
    name = "interplay"
    Settings = InterplaySettings

    def plan(self, settings: InterplaySettings) -> list[Planned]:  # type: ignore[override]
        return [item for seed in settings.seed_list() for item in self.plan_seed(settings, seed)]

    def plan_seed(self, settings: InterplaySettings, seed: int) -> list[Planned]:
        """The stages of one seed (label ``seed``); the base seed's are the single-seed plan's."""
        scenario = settings.scenario_settings()
        config = settings.train_config(seed)
        planned: list[Planned] = []
        clean = train_stage(config) if settings.clean_reference else None
        if clean is not None:
            planned.append(Planned(clean, {"row": "clean", "role": "train", "seed": seed}))
        recover_classes = settings.classes if settings.recover_classes is None else settings.recover_classes
        for protection in settings.protections:
            protect = protect_stage(protection, config.dataset, config.train_per_class,
                                    **settings.protect_options_for(protection, seed))  # fmt: skip
            before = train_stage(config, protect, scenario)
            base = {"protection": protection, "level": settings.level, "seed": seed}
            planned += [Planned(protect, {**base, "role": "protect"}),
                        Planned(before, {**base, "row": "Before", "role": "train"})]  # fmt: skip
            for cls in settings.classes:
                for part in _parts(settings, cls):
                    where = {**base, "cls": cls, "part": part}
                    target = {"scenario": scenario, "cls": cls, "part": part}
                    planned.append(Planned(audit_stage("accuracy", before, **target),
                                           {**where, "row": "Before", "role": "accuracy"}))  # fmt: skip
                    models: dict[str, Stage] = {"Before": before}
                    for row, method, options in settings.rows(protection, part):
                        options = settings.seeded(options, seed)
                        stage = unlearn_stage(before, method, scenario, cls, part, options, label=row)
                        planned.append(Planned(stage, {**where, "row": row, "role": "unlearn"}))
                        models[row] = stage
                    if clean is not None and cls in recover_classes:
                        models["clean"] = clean
                    runs = self._reference_runs(settings, before, target, where, seed)
                    planned += runs
                    references = {f"run{i}": run.stage for i, run in enumerate(runs)}
                    planned += self._audits(
                        settings, models, where, target, cls in recover_classes, references, seed
                    )
        return planned

    @staticmethod
    def _reference_runs(settings: InterplaySettings, before: Stage, target: dict[str, Any],
                        where: dict[str, Any], seed: int) -> list[Planned]:  # fmt: skip
        """RT retrains of one target with seeds seed+1.. (Theorem 2's reference-mechanism runs)."""
        runs = []
        for other in range(seed + 1, seed + 1 + settings.certify_runs):
            options = {**settings.method_options.get("rt", {}), "seed": other}
            stage = unlearn_stage(before, "rt", target["scenario"], target["cls"], target["part"], options,
                                  label=f"RT seed {other}")  # fmt: skip
            runs.append(Planned(stage, {**where, "row": f"RT seed {other}", "role": "reference"}))
        return runs

    @staticmethod
    def _audits(settings: InterplaySettings, models: dict[str, Stage], where: dict[str, Any],
                target: dict[str, Any], recover: bool, runs: dict[str, Stage],
                seed: int) -> list[Planned]:  # fmt: skip
        planned = []
        mia, recovery, certify = (settings.seeded(block, seed) for block in
                                  (settings.mia, settings.recover, settings.certify))  # fmt: skip
        cls = target["cls"]
        for row, model in models.items():
            labels = {**where, "row": row}
            # Tables 18-25: every class-level target; at subset level the Du-forget block only
            if mia is not None and row != "clean" and (settings.level == "class" or where["part"] == "Du"):
                stage = audit_stage("mia", model, mia, **target, label=f"{row} class {cls}")
                planned.append(Planned(stage, {**labels, "role": "mia"}))
            if recovery is not None and recover:
                options = {**recovery, "target_class": cls}
                planned.append(Planned(audit_stage("recover", model, options, label=f"{row} class {cls}"),
                                       {**labels, "role": "recover"}))  # fmt: skip
            if certify is not None and row != "clean":
                options = {**certify, "target_class": cls}
                stage = audit_stage("certify", model, options, others=runs, label=f"{row} class {cls}")
                planned.append(Planned(stage, {**labels, "role": "certify"}))
        return planned
