"""Does noise generated under bf16 autocast protect as well as fp32 noise? (issue 6)

Where bf16 is available (a CUDA GPU, or a CPU with AVX-512 BF16 / AMX), generates
UE-s and TAP noise for the same CIFAR-10 subset twice per seed, under fp32 and
under bf16 autocast, trains one victim per perturbation (in fp32, same seed, so
only the noise differs) and reports the victims' clean test accuracy (lower is
better protection), the accuracy gap bf16 - fp32 per seed and its mean, and the
generation speed ratio fp32 time / bf16 time. Records the CPU and GPU names.

On a machine without bf16 it measures nothing: it says so, names the CPU and the
missing flags, and exits with status 3. Usage:

    .venv/bin/python benchmarks/bf16_noise.py --data-root ../shared/data \\
        [--device auto] [--train-per-class 200] [--test-per-class 100] [--seeds 0 1 2] \\
        [--preset cpu] [--out docs/results/bf16-noise.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from dememo.data import load_dataset
from dememo.models import build_model
from dememo.protect import protect
from dememo.protect.presets import preset_options
from dememo.runtime import cpu_has_fast_bf16, resolve_device, seed_everything
from dememo.train import Recipe, accuracy, get_recipe, train

METHODS = ("ue-s", "tap")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_device(requested: str) -> torch.device | None:
    """The device to compare on, or None when it has no bf16 support worth measuring."""
    device = resolve_device(requested)
    if device.type == "cuda":
        return device if torch.cuda.is_bf16_supported() else None
    return device if cpu_has_fast_bf16() else None


def victim_accuracy(released, test, model: str, recipe: Recipe, seed: int, device) -> float:
    """Clean test accuracy of a victim trained in fp32 on ``released`` (evaluation is fp32)."""
    seed_everything(seed)
    net = build_model(model, released.channels, released.num_classes, released.image_size,
                      *released.channel_stats())  # fmt: skip
    train(net, released, recipe, seed=seed, device=device, precision="fp32", description="victim")
    return accuracy(net, test, device=device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="cpu", help="method options (protect-eval presets)")
    parser.add_argument("--model", default="fastnet")
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine = {"cpu": cpu_name(), "gpu": gpu, "cpu_bf16": cpu_has_fast_bf16(), "torch": torch.__version__}
    device = bf16_device(args.device)
    if device is None:
        print(
            f"bf16 unavailable: CPU {machine['cpu']!r} lacks the avx512_bf16/amx_bf16 flags and "
            f"{'GPU ' + gpu + ' has no bf16' if gpu else 'no CUDA GPU is present'}; nothing was measured. "
            "Run this benchmark on a GPU or an AVX-512 BF16/AMX CPU.",
            file=sys.stderr,
        )
        return 3
    data = load_dataset("cifar10", args.data_root)
    train_set, test_set = data.train.head(args.train_per_class), data.test.head(args.test_per_class)
    options = preset_options(args.preset)
    rows = []
    for method in METHODS:
        for seed in args.seeds:
            row = {"method": method, "seed": seed}
            for precision in ("fp32", "bf16"):
                started = time.perf_counter()
                perturbation = protect(method, train_set, device=device, precision=precision, seed=seed,
                                       **options.get(method, {}))  # fmt: skip
                row[f"{precision}_seconds"] = time.perf_counter() - started
                row[f"{precision}_accuracy"] = victim_accuracy(
                    perturbation.apply(train_set), test_set, args.model, get_recipe(args.recipe), seed, device
                )
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        gaps = [r["bf16_accuracy"] - r["fp32_accuracy"] for r in mine]
        summary[method] = {
            "fp32_accuracy_mean": statistics.mean(r["fp32_accuracy"] for r in mine),
            "bf16_accuracy_mean": statistics.mean(r["bf16_accuracy"] for r in mine),
            "gap_mean_points": 100 * statistics.mean(gaps),
            "gap_max_points": 100 * max(gaps, key=abs),
            "speed_ratio_fp32_over_bf16": sum(r["fp32_seconds"] for r in mine)
            / sum(r["bf16_seconds"] for r in mine),
        }
    report = {"machine": machine, "device": str(device), "args": vars(args) | {"out": str(args.out)},
              "rows": rows, "summary": summary}  # fmt: skip
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
