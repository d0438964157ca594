"""Reproduce a spec at a scale into a results directory, and read its entries back."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dememo.errors import ConfigError
from dememo.experiments.backends import BACKENDS
from dememo.experiments.graph import GraphOutcome, Progress, run_graph
from dememo.experiments.provenance import provenance
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import Spec
from dememo.experiments.stages import StageContext
from dememo.experiments.studies.base import STUDIES, Entry, Planned, plan_labels


def plan_spec(spec: Spec, scale: str) -> list[Planned]:
    return STUDIES.get(spec.study).plan(spec.settings(scale))


def run_planned(
    planned: list[Planned],
    db: ResultsDB,
    context: StageContext,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda line: None,
    progress: Progress = lambda done, total, label: None,
) -> tuple[GraphOutcome, list[Entry]]:
    """Run the planned stages on a backend; entries carry each plan label's result."""
    with BACKENDS.get(backend)(**(backend_options or {})) as runner:
        outcome = run_graph([p.stage for p in planned], db, context, runner, log, progress)
    entries = [Entry(p.labels, p.stage.key, outcome.outputs.get(p.stage.key),
                     outcome.failed.get(p.stage.key)) for p in planned]  # fmt: skip
    return outcome, entries


@contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Only one reproduce writes a results directory at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{directory}: another 'dememo reproduce' is writing here") from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def reproduce(
    spec: Spec,
    scale: str,
    results: Path,
    context: StageContext,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda line: None,
    progress: Progress = lambda done, total, label: None,
) -> GraphOutcome:
    """Plan ``spec`` at ``scale``, run what is not done yet, record everything in ``results``."""
    planned = plan_spec(spec, scale)
    BACKENDS.get(backend)
    with exclusive(results):
        db = ResultsDB.in_directory(results)
        try:
            definition = spec.model_dump(mode="json")
            db.begin_reproduction(spec.name, scale, definition, backend, plan_labels(planned))
            db.record_provenance(spec.name, scale, provenance())
            outcome, _ = run_planned(planned, db, context, backend, backend_options, log, progress)
            db.end_reproduction(spec.name, scale, "failed" if outcome.failed or outcome.blocked else "done")
        finally:
            db.close()
    return outcome


def unreached_radii(outcome: GraphOutcome) -> list[str]:
    """'<stage label> (eta 0.8: distance 0.14; ...)' for every recover audit of ``outcome``
    whose attack did not reach its radius at some eta > 0 (metric ``radius_reached`` 0): its
    budget, not eta, bounded it, so the spec's recovery says nothing about depth there."""
    flagged = []
    for key, output in outcome.outputs.items():
        misses = []
        for (name, split), value in sorted(output.metrics.items()):
            if not name.startswith("radius_reached") or value or not split.startswith("eta="):
                continue
            model = name.partition("/")[2] or ""
            distance = output.metrics.get((name.replace("radius_reached", "distance"), split))
            shown = "?" if distance is None else f"{distance:.2g}"
            misses.append(f"{model + ' ' if model else ''}{split}: distance {shown}")
        if misses:
            flagged.append(f"{outcome.stages[key].label} ({'; '.join(misses)})")
    return flagged


def stored_entries(db: ResultsDB, spec: str, scale: str) -> list[Entry]:
    """Entries of a recorded reproduction, from the database alone."""
    failures = {r.key: r.error for r in db.runs() if r.status == "failed"}
    return [Entry(labels, key, db.done_output(key), failures.get(key))
            for key, label_sets in db.plan(spec, scale).items() for labels in label_sets]  # fmt: skip
