"""The import graph of src/dememo: no circles, and stage packages never reach up into the
experiments or the CLI. Imports are read with ``ast`` (those inside functions and
``if TYPE_CHECKING`` blocks included); ``from dememo.x import y`` depends on the module
``dememo.x.y`` where that is a module, else on ``dememo.x``; a package is its ``__init__``."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dememo

SOURCE = Path(dememo.__file__).parent
STAGE_PACKAGES = ("data", "models", "protect", "unlearn", "audit", "text", "lm")
UPPER_LAYERS = ("dememo.experiments", "dememo.cli")


def module_files(root: Path = SOURCE) -> dict[str, Path]:
    """Module name -> file, for every module under ``root`` (a package named by its __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:  # 'import a.b.c' names a module or its package
                    target = target.rpartition(".")[0]
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "dememo.experiments.stages.base" in graph["dememo.experiments.stages.protect"]
    assert "dememo.experiments.studies.protect_eval" in graph["dememo.experiments.studies"]  # an __init__
    # imports inside functions count: the interplay-levels study loads specs lazily
    assert "dememo.experiments.spec" in graph["dememo.experiments.studies.interplay_levels"]


def test_the_cycle_finder_names_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_stage_packages_do_not_import_experiments_or_cli():
    bad = [f"{name} imports {target}"
           for name, targets in import_graph().items()
           if name.partition(".")[2].split(".")[0] in STAGE_PACKAGES
           for target in sorted(targets) if target.startswith(UPPER_LAYERS)]  # fmt: skip
    assert not bad, "; ".join(bad)


REGISTERED = {  # recorded before issue 16's layout change
    "STUDIES": ["interplay", "interplay-levels", "llm", "protect-eval", "recovery-protected"],
    "VIEWS": ["augmentation-bars", "augmentation-table", "certified-bounds", "certified-curves", "figure12",
              "findings",  # issue 17
              "interplay-table", "lifecycle-recovery", "lifecycle-recovery-table", "lifecycle-summary",
              "mia-gap", "mia-table",
              "ratio-curve", "ratio-table", "recovery-class", "recovery-class-table", "recovery-curves",
              "recovery-ft-classes", "recovery-table", "synergy", "table3", "table4"],
    "STAGE_KINDS": ["audit", "lm-finetune", "lm-recover", "lm-unlearn", "protect", "train", "unlearn"],
    "BACKENDS": ["local", "ray"],
}  # fmt: skip


@pytest.mark.parametrize("entry", ["dememo.cli", "dememo.experiments.studies.protect_eval"])
def test_any_entry_point_registers_every_study_view_and_stage_kind(entry):
    code = (
        f"import json, {entry}\n"
        "from dememo.experiments.backends import BACKENDS\n"
        "from dememo.experiments.stages.base import STAGE_KINDS\n"
        "from dememo.experiments.studies.base import STUDIES\n"
        "from dememo.experiments.views.base import VIEWS\n"
        f"print(json.dumps({{n: globals()[n].names() for n in {tuple(REGISTERED)}}}))"
    )
    path = os.pathsep.join([str(SOURCE.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout) == REGISTERED
