"""Which llm cpu setting learns: fine-tune the Clean and RegText models of the llm spec's ``cpu``
scale with some of its settings changed, score them, and apply Table 4's did-not-learn guard.

Only the llm study's fine-tuning stage runs (``dememo.lm.jobs.finetune_or_load``, which the
lm-finetune stage calls: fine-tuning, then yes-vs-no scoring of every task's test examples),
not unlearning or recovery. Each setting is a comma-separated list of overrides of the cpu
scale, as ``dememo llm-study`` applies them (``dememo.experiments.studies.llm.with_overrides``):
recipe fields (``lr``, ``epochs``, ``batch_size``) or scale fields (``train_layers``,
``train_per_task``, ...); the empty setting is the spec's own. Per (setting, seed, training data,
task) it prints accuracy, "yes" share, the guard's verdict (``dememo.experiments.views.llm.
learning_problem``: accuracy within chance's 95% Wilson interval, or one answer to > 80% of
prompts) and the seconds of fine-tuning and of the whole call (fine-tuning, scoring and, for
the first model of a setup, caching the frozen layers' outputs). Usage:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lm_cpu_setting.py --seeds 0 1 2 \\
        --setting "lr=5e-4" --setting "lr=2e-4,epochs=6" [--store /tmp/lm-probe] [--json rows.jsonl]

Artifacts go to ``--store`` (a temporary folder by default); a rerun with the same store
reuses the fine-tuned models and prints their stored metrics.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
import yaml

from dememo.experiments.spec import load_spec
from dememo.experiments.studies.llm import LLMSettings, with_overrides
from dememo.experiments.views.llm import learning_problem
from dememo.lm.jobs import finetune_or_load
from dememo.store import ArtifactStore

CPU = torch.device("cpu")


def overrides(text: str) -> dict[str, object]:
    """'lr=5e-4,epochs=6' -> {'lr': 0.0005, 'epochs': 6} (values parsed as YAML)."""
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--setting", action="append", default=None, help="overrides, e.g. 'lr=5e-4,epochs=6'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", default=["clean", "protected"], choices=["clean", "protected"])
    parser.add_argument("--store", default=None, help="artifact folder (default: a temporary one)")
    parser.add_argument("--json", default=None, help="append one JSON line per row to this file")
    args = parser.parse_args()
    spec = load_spec("llm")
    store = ArtifactStore(args.store or tempfile.mkdtemp(prefix="lm-probe-"))
    print("| setting | seed | model | task | accuracy % | yes % | guard | train s | total s |")
    print("|---|---|---|---|---:|---:|---|---:|---:|")
    for setting in args.setting or [""]:
        settings = with_overrides(spec, args.scale, **overrides(setting)).settings(args.scale)
        assert isinstance(settings, LLMSettings)
        for seed in args.seeds:
            for data in args.data:
                started = time.perf_counter()
                trained = finetune_or_load(settings.setup(), settings.recipe, data, store, CPU, seed)
                total = time.perf_counter() - started
                metrics = trained.artifact.metrics
                for task in settings.tasks:
                    accuracy, yes = metrics["test_accuracy"][task], metrics["test_yes_share"][task]
                    problem = learning_problem(accuracy, yes, metrics["test_size"][task])
                    row = {
                        "setting": setting or "(spec)", "seed": seed,
                        "model": "Clean" if data == "clean" else "RegText", "task": task,
                        "accuracy": 100 * accuracy, "yes_share": 100 * yes, "guard": problem or "learned",
                        "train_seconds": metrics["train_seconds"], "seconds": total,
                        "reused": trained.reused,
                    }  # fmt: skip
                    print(f"| {row['setting']} | {seed} | {row['model']} | {task} | {row['accuracy']:.1f} | "
                          f"{row['yes_share']:.0f} | {row['guard']} | {row['train_seconds']:.0f} | "
                          f"{total:.0f} |", flush=True)  # fmt: skip
                    if args.json:
                        with open(args.json, "a") as out:
                            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
