"""Experiments: specs of the paper's artefacts, a cached stage graph, SQLite results, reports.

spec (YAML, per scale) --study.plan--> stages (protect -> train -> unlearn -> audit)
    --run_graph on a backend--> results.sqlite + artifact store --views--> report.html

The engine is this folder's modules (spec, graph, backends, results, reproduce, report);
``studies/`` plans stages, ``views/`` shows results, ``stages/`` runs them.
"""

from dememo.experiments import studies, views  # noqa: F401  (registers the studies and their views)
from dememo.experiments.graph import ExperimentError, GraphOutcome, run_graph
from dememo.experiments.reproduce import plan_spec, reproduce, run_planned
from dememo.experiments.results import ResultsDB
from dememo.experiments.spec import SCALES, Spec, load_spec, spec_names

__all__ = ["SCALES", "ExperimentError", "GraphOutcome", "ResultsDB", "Spec", "load_spec", "plan_spec",
           "reproduce", "run_graph", "run_planned", "spec_names"]  # fmt: skip
