"""Experiment specs: YAML files shipped in ``dememo/experiments/specs/``.

A spec names a study, the paper artefact it reproduces (with the source), the
views its report shows, and one settings block per scale validated by the study's
Settings model: smoke (CI), cpu (a 2-core CPU), optionally gpu (one GPU, minutes), and
either paper (the paper's own setting) or large (full size, but not the paper's setting,
e.g. CIFAR-10 standing in for ImageNet); a spec built from a command's flags has the one
scale 'custom' instead. Errors name the file, the key path and
its line, e.g. ``table3.yaml: scales.smoke.victims.0.modle (line 21): Extra inputs
are not permitted``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from dememo.errors import ConfigError
from dememo.experiments.studies.base import STUDIES

Scale = Literal["smoke", "cpu", "gpu", "paper", "large", "custom"]
SCALES: tuple[str, ...] = ("smoke", "cpu", "gpu", "paper", "large")
REQUIRED: tuple[str, ...] = ("smoke", "cpu")
FULL: tuple[str, ...] = ("paper", "large")  # every spec has exactly one of these (issue 17)
CUSTOM = "custom"  # the one scale of a spec built from command-line flags (e.g. dememo interplay)


class PaperRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    artefact: str  # e.g. "Table 3", "Figure 19"
    section: str
    extension: bool = False  # a dememo study the paper reports no numbers for
    note: str = ""


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    study: str
    paper: PaperRef
    views: list[str]
    scales: dict[Scale, dict[str, Any]]

    @field_validator("study")
    @classmethod
    def _known_study(cls, value: str) -> str:
        if value not in STUDIES:
            raise ValueError(f"unknown study {value!r}; valid: {', '.join(STUDIES.names())}")
        return value

    @field_validator("views")
    @classmethod
    def _known_views(cls, value: list[str]) -> list[str]:
        from dememo.experiments.views.base import VIEWS

        unknown = [v for v in value if v not in VIEWS]
        if unknown:
            raise ValueError(f"unknown view(s) {unknown}; valid: {', '.join(VIEWS.names())}")
        return value

    @field_validator("scales")
    @classmethod
    def _every_scale(cls, value: dict[str, Any]) -> dict[str, Any]:
        if list(value) == [CUSTOM]:
            return value
        if all(s in value for s in FULL):
            raise ValueError("scales 'paper' and 'large' exclude each other ('large': full size, not the "
                             "paper's setting)")  # fmt: skip
        missing = [s for s in REQUIRED if s not in value]
        if not any(s in value for s in FULL):
            missing.append("paper")
        if missing:
            raise ValueError(f"missing scale(s) {missing}; every spec defines smoke, cpu and paper (or "
                             "large: full size, not the paper's setting)")  # fmt: skip
        return value

    def settings(self, scale: str) -> BaseModel:
        """The validated settings of one scale."""
        if scale not in self.scales:
            raise ConfigError(f"spec {self.name!r} has no scale {scale!r}; valid: {', '.join(self.scales)}")
        try:
            return STUDIES.get(self.study).Settings.model_validate(self.scales[scale])
        except ValidationError as error:
            raise ConfigError(describe_error(f"spec {self.name!r}", error, ("scales", scale))) from None


def _line(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at key path ``loc`` (or of its deepest existing parent)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def describe_error(source: str, error: ValidationError, prefix: tuple = (), text: str | None = None) -> str:
    """'<source>: <key.path> (line N): <problem>; ...' (lines when the YAML text is known)."""
    root = yaml.compose(text) if text is not None else None
    problems = []
    for item in error.errors():
        loc = tuple(part for part in (*prefix, *item["loc"]) if part != "[key]")
        line = _line(root, loc)
        where = ".".join(map(str, loc)) + (f" (line {line})" if line else "")
        problems.append(f"{where}: {item['msg']}")
    return f"{source}: " + "; ".join(problems)


def parse_spec(text: str, source: str) -> Spec:
    """Validate a spec's YAML text, every scale included; errors name ``source`` and the key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a spec is a YAML mapping (name, title, study, paper, views, scales)")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_error(source, error, text=text)) from None
    for scale in spec.scales:
        try:
            STUDIES.get(spec.study).Settings.model_validate(spec.scales[scale])
        except ValidationError as error:
            raise ConfigError(describe_error(source, error, ("scales", scale), text)) from None
    return spec


def spec_directory() -> Path:
    return Path(str(files("dememo.experiments").joinpath("specs")))


def spec_names() -> list[str]:
    return sorted(path.stem for path in spec_directory().glob("*.yaml"))


@cache
def load_spec(name_or_path: str) -> Spec:
    """A shipped spec by name (e.g. 'table3') or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = spec_directory() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown spec {name_or_path!r}; shipped: {', '.join(spec_names())}")
    elif not path.is_file():
        raise ConfigError(f"spec file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        reason = f"{error.reason} at byte {error.start}"
        raise ConfigError(f"spec file {path}: not a UTF-8 YAML text ({reason})") from None
    except OSError as error:
        raise ConfigError(f"spec file {path}: cannot read it ({error.strerror or error})") from None
    if "\0" in text:
        raise ConfigError(f"spec file {path}: a binary file, not YAML text")
    return parse_spec(text, path.name)
