"""Where stages run: in this process (``local``) or as Ray tasks (``ray``).

A backend takes ready stages with ``submit`` and hands back finished ones with
``next_done``; the graph runner alone writes results, so every backend shares
one results database and one artifact store. ``execute`` runs one stage wherever
the backend put it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dememo.errors import ConfigError, DememoError
from dememo.experiments.stages import STAGE_KINDS, Stage, StageContext, StageOutput
from dememo.experiments.stages.base import artifact_precision
from dememo.registry import Registry
from dememo.runtime import resolve_device


def execute(stage: Stage, inputs: dict[str, StageOutput], context: StageContext) -> StageOutput | str:
    """Run one stage; an exception becomes its one-line error text (the traceback for others)."""
    started = time.perf_counter()
    try:
        output = STAGE_KINDS.get(stage.kind).run(stage.config, inputs, context)
        where = f"{resolve_device(context.device)} on {socket.gethostname()}"
        return dataclasses.replace(output, device=where, seconds=time.perf_counter() - started,
                                   precision=artifact_precision(context, output.artifact))  # fmt: skip
    except DememoError as error:
        return f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001  (a stage's bug must not stop independent stages)
        trace = traceback.format_exception_only(type(error), error)[-1].strip()
        return f"{trace} (in {traceback.extract_tb(error.__traceback__)[-1].filename})"


class Backend(ABC):
    """Runs submitted stages; use as a context manager (it may hold a cluster connection).

    ``on_start(stage)``, when the graph runner sets it, is called by a backend that knows when
    a submitted stage actually starts (the local one: right before running it), so a stage is
    recorded as 'running' only while it runs, not while it waits in the queue. A backend that
    cannot tell (Ray schedules remotely) never calls it: its stages get their row when they end.
    """

    on_start: Callable[[Stage], None] | None = None

    @abstractmethod
    def submit(self, stage: Stage, inputs: dict[str, StageOutput], context: StageContext) -> None: ...

    @abstractmethod
    def next_done(self) -> tuple[str, StageOutput | str]:
        """A finished stage's key and its output (or error text)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


BACKENDS: Registry[type[Backend]] = Registry("backend")


@BACKENDS.register("local")
class LocalBackend(Backend):
    """One stage at a time, in submission order, in this process."""

    def __init__(self, **_: Any) -> None:
        self.queue: deque[tuple[Stage, dict, StageContext]] = deque()

    def submit(self, stage: Stage, inputs: dict[str, StageOutput], context: StageContext) -> None:
        self.queue.append((stage, inputs, context))

    def next_done(self) -> tuple[str, StageOutput | str]:
        stage, inputs, context = self.queue.popleft()
        if self.on_start is not None:
            self.on_start(stage)
        return stage.key, execute(stage, inputs, context)


def _ray_task(stage: Stage, inputs: dict[str, StageOutput], context: StageContext) -> dict | str:
    result = execute(stage, inputs, context)
    return result if isinstance(result, str) else result.to_json()


@BACKENDS.register("ray")
class RayBackend(Backend):
    """Independent stages as Ray tasks with the CPUs/GPUs their kind declares.

    With no ``address`` a local Ray instance is started (``num_cpus`` of this
    machine) and stopped on exit; with one, the stages go to that cluster, whose
    workers must see the same artifact store path and have dememo installed.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, **_: Any) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs the 'ray' package (pip install ray)") from None
        self.ray = ray
        self.address = address
        self.num_cpus = num_cpus
        self.refs: dict[Any, str] = {}
        self.started_here = False

    def __enter__(self) -> RayBackend:
        ray = self.ray
        if not ray.is_initialized():
            if self.address is None:
                source = str(Path(__file__).resolve().parents[2])  # the folder holding 'dememo'
                path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": path}})  # fmt: skip
            else:
                ray.init(address=self.address, log_to_driver=False)
            self.started_here = True
        self.task = ray.remote(_ray_task)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started_here:
            self.ray.shutdown()

    def submit(self, stage: Stage, inputs: dict[str, StageOutput], context: StageContext) -> None:
        needs = STAGE_KINDS.get(stage.kind).resources(stage.config, context)
        ref = self.task.options(num_cpus=needs.cpus, num_gpus=needs.gpus, name=stage.label).remote(
            stage, inputs, context
        )
        self.refs[ref] = stage.key

    def next_done(self) -> tuple[str, StageOutput | str]:
        (ready,), _ = self.ray.wait(list(self.refs), num_returns=1)
        key = self.refs.pop(ready)
        try:
            result = self.ray.get(ready)
        except self.ray.exceptions.RayError as error:
            return key, f"ray: {type(error).__name__}: {str(error).splitlines()[0]}"
        return key, result if isinstance(result, str) else StageOutput.from_json(result)
