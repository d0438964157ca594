"""Run a stage graph: shared stages once, finished stages skipped, failures contained.

Stages are deduplicated by key and run in dependency order on a backend. When
the backend starts a stage (``Backend.on_start``; not when it is queued) its
'running' row is written; after it, its output (or error) and
metrics are written in one transaction. A stage whose inputs failed is
'blocked' and not run; every other stage goes on. ``run_graph`` returns what
happened; ``GraphOutcome.raise_for_failures`` turns failures into one error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dememo.errors import ConfigError, DememoError
from dememo.experiments.backends import Backend
from dememo.experiments.results import ResultsDB
from dememo.experiments.stages import Stage, StageContext, StageOutput

Progress = Callable[[int, int, str], None]  # (stages finished, stages to run, last stage's label)


class ExperimentError(DememoError):
    """One or more stages of an experiment failed (the others were finished)."""


@dataclass
class GraphOutcome:
    stages: dict[str, Stage]
    outputs: dict[str, StageOutput] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    blocked: dict[str, list[str]] = field(default_factory=dict)  # key -> failed inputs
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def raise_for_failures(self) -> None:
        if not self.failed and not self.blocked:
            return
        parts = [f"{self.stages[k].label} [{k}]: {error}" for k, error in self.failed.items()]
        if self.blocked:
            parts.append(f"{len(self.blocked)} dependent stage(s) not run")
        raise ExperimentError(f"{len(self.failed)} stage(s) failed: " + "; ".join(parts))


def in_order(stages: list[Stage]) -> list[Stage]:
    """Unique stages, each after the stages it consumes (errors name a missing input or a cycle)."""
    unique = {stage.key: stage for stage in stages}
    order: list[Stage] = []
    state: dict[str, str] = {}

    def visit(stage: Stage) -> None:
        if state.get(stage.key) == "done":
            return
        if state.get(stage.key) == "visiting":
            raise ConfigError(f"stage graph has a cycle through {stage.label} [{stage.key}]")
        state[stage.key] = "visiting"
        for role, key in stage.inputs.items():
            if key not in unique:
                raise ConfigError(f"{stage.label}: input {role!r} ({key}) is not a stage of this graph")
            visit(unique[key])
        state[stage.key] = "done"
        order.append(stage)

    for stage in unique.values():
        visit(stage)
    return order


def run_graph(
    stages: list[Stage],
    db: ResultsDB,
    context: StageContext,
    backend: Backend,
    log: Callable[[str], None] = lambda line: None,
    progress: Progress = lambda done, total, label: None,
) -> GraphOutcome:
    """Run every stage not already finished in ``db``; record each result once.
    ``progress(done, total, label)`` is called before the first stage and after each."""
    order = in_order(stages)
    outcome = GraphOutcome({stage.key: stage for stage in order})
    pending: list[Stage] = []
    for stage in order:
        stored = db.done_output(stage.key)
        if stored is not None and (context.artifacts / stored.artifact).is_dir():
            outcome.outputs[stage.key] = stored
            outcome.reused.append(stage.key)
        else:
            pending.append(stage)
    if outcome.reused:
        log(f"{len(outcome.reused)} of {len(order)} stages already done")
    total = len(pending)
    progress(0, total, "")
    backend.on_start = lambda stage: db.start(stage, context.device)
    running: set[str] = set()
    while pending or running:
        for stage in list(pending):
            bad = [k for k in stage.inputs.values() if k in outcome.failed or k in outcome.blocked]
            if bad:
                outcome.blocked[stage.key] = bad
                pending.remove(stage)
                log(f"blocked  {stage.label}: an input failed")
                progress(total - len(pending) - len(running), total, stage.label)
            elif all(k in outcome.outputs for k in stage.inputs.values()):
                inputs = {role: outcome.outputs[k] for role, k in stage.inputs.items()}
                backend.submit(stage, inputs, context)
                running.add(stage.key)
                pending.remove(stage)
        if not running:
            break
        key, result = backend.next_done()
        running.discard(key)
        stage = outcome.stages[key]
        if isinstance(result, StageOutput):
            db.finish(key, result, stage)
            outcome.outputs[key] = result
            outcome.ran.append(key)
            log(f"done     {stage.label}")
        else:
            db.fail(key, result, stage, context.device)
            outcome.failed[key] = result
            log(f"FAILED   {stage.label}: {result}")
        progress(total - len(pending) - len(running), total, stage.label)
    return outcome
