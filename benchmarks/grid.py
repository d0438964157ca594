"""The size of every shipped spec's stage graph, its counted work and estimated GPU time, and
the wall time a recorded run took.

For each spec and scale, and for all specs of a scale together (shared stages once): unique
stages by kind (audits by job), the work they stand for in image passes
(``dememo.experiments.cost``: training and unlearning steps, protections' surrogate and PGD
passes up to their ``max_rounds``, audits' forward passes and attacks) and, for the LM stages,
in layer-token passes (tokens x trained or forward decoder layers x examples x epochs) and, at the gpu scale,
the estimated GPU minutes under cost.py's stated assumptions. ``--calibrate`` measures on this
machine's CPU the relative costs cost.py uses (a forward, a PGD step, a per-sample gradient and
a CSD step per image against a training step of the airbench network) and the SVC fit time.
With --results DIR (repeatable), the stage time each recorded reproduction spent (the
executor's own measure, runs.seconds), per kind.

    .venv/bin/python benchmarks/grid.py [--scales gpu] [--results DIR ...] [--calibrate]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.svm import SVC

from dememo.experiments import load_spec, plan_spec, spec_names
from dememo.experiments.cost import plan_cost
from dememo.experiments.spec import SCALES
from dememo.models import build_model
from dememo.protect.pixel_pgd import frozen, pgd
from dememo.protect.simclr import class_separability
from dememo.runtime import channels_last
from dememo.unlearn.influence import per_sample_gradients


def stage_name(stage) -> str:
    return f"audit/{stage.config['job']}" if stage.kind == "audit" else stage.kind


def grid(specs: list[str], scale: str) -> tuple[Counter, float, float, float]:
    """Unique stages of these specs together (shared stages once), their image passes, their
    LM layer-token passes and their estimated GPU seconds."""
    stages = {p.stage.key: p.stage for spec in specs for p in plan_spec(load_spec(spec), scale)}
    cost, count = plan_cost(list(stages.values()))
    kinds = Counter(stage_name(s) for s in stages.values())
    return kinds, cost.passes, cost.lm_passes, cost.gpu_seconds(count)


def per_image(step, batch: int, repeats: int = 3) -> float:
    """Seconds per image of ``step`` (one warm-up call first)."""
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats / batch


def calibrate(batch: int = 128) -> dict[str, float]:
    """cost.py's relative costs, measured with the airbench network on this CPU."""
    torch.manual_seed(0)
    model = build_model("airbench", 3, 10, (32, 32)).to(memory_format=torch.channels_last)
    images, labels = channels_last(torch.rand(batch, 3, 32, 32)), torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def train_step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def forward():
        with torch.no_grad():
            model(images)

    def pgd_step():
        with frozen(model):
            pgd(model, images, labels, torch.zeros_like(images), budget=8 / 255, step_size=0.8 / 255, steps=1,
                minimize=True)  # fmt: skip

    noise = torch.rand(512, 3, 32, 32)

    def csd_step():
        delta = noise.clone().requires_grad_(True)
        torch.autograd.grad(class_separability(delta, labels.repeat(4)), delta)

    train = per_image(train_step, batch)
    model.eval()
    result = {
        "train_images_per_second": 1 / train,
        "FORWARD": per_image(forward, batch) / train,
        "PGD": per_image(pgd_step, batch) / train,
        "PER_SAMPLE": per_image(lambda: per_sample_gradients(model, images[:32], labels[:32]), 32, 1) / train,
        "CSD": per_image(csd_step, 512) / train,
    }
    for side in (1000, 2000):
        features, members = np.random.rand(2 * side, 10), np.r_[np.ones(side), np.zeros(side)]
        started = time.perf_counter()
        SVC(C=3, gamma="auto", kernel="rbf").fit(features, members)
        result[f"svc_seconds_{side}_a_side"] = time.perf_counter() - started
    return result


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
    parser.add_argument("--calibrate", action="store_true", help="measure cost.py's relative costs here")
    args = parser.parse_args()
    if args.calibrate:
        print(json.dumps(calibrate(), indent=1))
        return
    print("| spec | scale | stages | by kind | work (M image passes) | LM work (M layer-token passes) "
          "| est. GPU min |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|---:|")
    for spec in [*spec_names(), "all specs"]:
        for scale in args.scales:
            names = [n for n in spec_names() if scale in load_spec(n).scales]
            if spec != "all specs":
                names = [spec] if spec in names else []
            if not names:
                continue
            counts, passes, lm_passes, seconds = grid(names, scale)
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            minutes = f"{seconds / 60:.1f}" if scale == "gpu" else "-"
            print(f"| {spec} | {scale} | {sum(counts.values())} | {kinds} | {passes / 1e6:.2f} "
                  f"| {lm_passes / 1e6:.1f} | {minutes} |")  # fmt: skip
    for results in args.results:
        print(f"\nrecorded in {results}:\n")
        print("| spec | scale | stage seconds | by kind |")
        print("|---|---|---:|---|")
        for (spec, scale), kinds in sorted(recorded(results).items()):
            by_kind = ", ".join(f"{k} {s:.0f} s" for k, s in sorted(kinds.items()))
            print(f"| {spec} | {scale} | {sum(kinds.values()):.0f} | {by_kind} |")


if __name__ == "__main__":
    main()
