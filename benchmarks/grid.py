"""The size of every shipped spec's stage graph, and the wall time a recorded run took.

For each spec and scale (at 'paper', the llm spec's 'large'), and for all paper specs
together (shared stages once): unique
stages by kind (audits by job), and the training work
they stand for in model-epochs over their data (train and RT: recipe epochs x training
images; FT: epochs x retain images; GA: epochs x forget images; recovery: etas x
epochs x attack images). With --results DIR (repeatable), the stage time each recorded
reproduction spent (the executor's own measure, runs.seconds), per kind.

    .venv/bin/python benchmarks/grid.py [--results DIR ...] [--markdown]
"""

from __future__ import annotations

import argparse
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

from dememo.data.sources import DATASETS
from dememo.experiments import load_spec, plan_spec, spec_names
from dememo.experiments.spec import LARGE, SCALES, Spec

TRAIN_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "fashion-mnist": 60_000, "digits": 1_257}


def stage_name(stage) -> str:
    return f"audit/{stage.config['job']}" if stage.kind == "audit" else stage.kind


def train_images(config: dict) -> int:
    """Training images of a TrainConfig (per-class cap x classes, or the full split)."""
    per_class = config.get("train_per_class")
    full = TRAIN_SIZE.get(config["dataset"], 0)
    classes = 100 if config["dataset"] == "cifar100" else 10
    return min(full, per_class * classes) if per_class else full


def work(stage, stages: dict) -> float:
    """Model-epochs x images this stage trains on (0 where not a training loop)."""
    config = stage.config
    if stage.kind == "train":
        train = config.get("train", config)
        return train["recipe"]["epochs"] * train_images(train)
    if stage.kind == "unlearn":
        parent = stages[stage.inputs["model"]].config["train"]
        images = train_images(parent)
        forget = images // 10  # class level: one class of ten; subset level: about 9% of all
        options = config["options"]
        if config["method"] == "rt":
            return parent["recipe"]["epochs"] * (images - forget)
        if config["method"] == "ft":
            return options.get("epochs", 10) * (images - forget)
        if config["method"] == "ga":
            return options.get("epochs", 5) * forget
        return 0.0
    if stage.kind == "audit" and config["job"] == "recover":
        parent = stages[stage.inputs["model"]]
        while parent.kind != "train":
            parent = stages[parent.inputs["model"]]
        images = train_images(parent.config["train"]) // 10 * 0.1
        epochs = config["options"].get("epochs") or (
            100 if parent.config["train"]["dataset"] == "cifar100" else 60
        )
        return len(config["options"].get("etas", (0, 0.2, 0.4, 0.8, 1.6))) * epochs * images
    return 0.0


def scale_of(spec: Spec, scale: str) -> str:
    """``scale``, or 'large' for 'paper' where the spec's full-size scale is not the paper's (llm)."""
    return LARGE if scale == "paper" and LARGE in spec.scales else scale


def grid(specs: list[str], scale: str) -> tuple[Counter, float]:
    """Unique stages of these specs together (shared stages once) and their training work."""
    loaded = [load_spec(spec) for spec in specs]
    stages = {p.stage.key: p.stage for spec in loaded for p in plan_spec(spec, scale_of(spec, scale))}
    counts = Counter(stage_name(s) for s in stages.values())
    return counts, sum(work(s, stages) for s in stages.values())


def recorded(results: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(spec, scale) -> kind -> seconds of finished stages, from a results directory."""
    db = sqlite3.connect(results / "results.sqlite")
    rows = db.execute(
        "SELECT p.spec, p.scale, r.kind, r.config, r.seconds FROM plan p JOIN runs r ON r.key = p.key "
        "WHERE r.status = 'done' GROUP BY p.spec, p.scale, r.key"
    ).fetchall()
    times: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for spec, scale, kind, _, seconds in rows:
        times[(spec, scale)][kind] += seconds or 0.0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, action="append", default=[])
    parser.add_argument("--scales", nargs="+", default=list(SCALES))
    args = parser.parse_args()
    DATASETS.names()
    print("| spec | scale | stages | by kind | training work (M image-epochs) |")
    print("|---|---|---:|---|---:|")
    paper_specs = [name for name in spec_names() if name != "lifecycle"]
    for spec in [*spec_names(), "all paper specs"]:
        for scale in args.scales:
            counts, images = grid(paper_specs if spec == "all paper specs" else [spec], scale)
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            shown = scale if spec == "all paper specs" else scale_of(load_spec(spec), scale)
            print(f"| {spec} | {shown} | {sum(counts.values())} | {kinds} | {images / 1e6:.2f} |")
    for results in args.results:
        print(f"\nrecorded in {results}:\n")
        print("| spec | scale | stage seconds | by kind |")
        print("|---|---|---:|---|")
        for (spec, scale), kinds in sorted(recorded(results).items()):
            by_kind = ", ".join(f"{k} {s:.0f} s" for k, s in sorted(kinds.items()))
            print(f"| {spec} | {scale} | {sum(kinds.values()):.0f} | {by_kind} |")


if __name__ == "__main__":
    main()
