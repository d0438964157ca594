"""One GPU check for the gpu scale (issue 20), in at most 8 minutes on one H100/H200.

Writes OUTDIR/gpu_check.json, rewritten after every part (a timeout keeps what finished; a
part that fails records its error and the rest still run):

- device: the GPU (or CPU) name, torch and CUDA versions;
- airbench: training throughput (images/s) of the 'airbench' recipe on full CIFAR-10 after an
  untimed warm-up epoch, and the clean test accuracy (fp32 evaluation with the flip TTA);
- resnet18: training throughput of ResNet-18 with the paper's recipe (paper-sgd-cifar10), one
  epoch after a warm-up;
- table3: the UE-s and OPS cells of Table 3 at the gpu scale (seed 0), run through the spec's
  own plan: clean, UE-s and OPS victims' test accuracy and generation time;
- pue: one robust surrogate step and one robust noise step at PUE's official defaults
  (ResNet-18, 100 / 10 weight draws over 6 sigma levels, batch 128), their seconds, the peak
  memory (torch.cuda.max_memory_allocated on CUDA, else the process's peak RSS) and the
  robust round they imply on full CIFAR-10 (an extrapolation, marked as such);
- bf16_noise: UE-s noise (gpu preset) made under fp32 and under bf16 autocast on 1,000 images
  a class, one fp32 airbench victim on each (benchmarks/bf16_noise.py's victim), their clean
  test accuracy and the gap.

``--tiny`` runs every part on a few hundred images with the fewest iterations (a CPU check of
the script, under a minute; its numbers are not results; on a CPU without bf16 the bf16 part is
forced through the slow path). Usage:

    .venv/bin/python benchmarks/gpu_check.py OUTDIR [--tiny] [--data-root ../shared/data] [--device auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from bf16_noise import bf16_device, cpu_name, victim_accuracy

from dememo.data import load_dataset
from dememo.experiments import ResultsDB, load_spec, plan_spec
from dememo.experiments.reproduce import run_planned
from dememo.experiments.shrink import TINY_PROTECT, shrunk, with_fields
from dememo.experiments.stages import StageContext
from dememo.experiments.studies.protect_eval import protection_rows
from dememo.models import build_model
from dememo.pipeline import fresh_model
from dememo.protect import PROTECTORS, protect
from dememo.protect.pixel_pgd import frozen
from dememo.protect.presets import preset_options
from dememo.protect.pue import ProvablyUnlearnable
from dememo.runtime import MEMORY_FORMAT, channels_last, resolve_device, resolve_precision
from dememo.train import accuracy, get_recipe, train

PER_CLASS_TINY = {"train": 10, "test": 5}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(model_name: str, recipe_name: str, data, device, epochs: int | None) -> dict:
    """Images/s of ``train`` over ``data`` after an untimed warm-up epoch on a tenth of it."""
    recipe = get_recipe(recipe_name, **({"epochs": epochs} if epochs else {}))
    warm = data.head(max(1, len(data) // data.num_classes // 10))
    train(fresh_model(model_name, data, 0), warm, get_recipe(recipe_name, epochs=1), device=device,
          description="warm-up")  # fmt: skip
    model = fresh_model(model_name, data, 0)
    synchronize(device)
    result = train(model, data, recipe, seed=0, device=device, description=f"{model_name} ({recipe_name})")
    synchronize(device)
    return {"images_per_second": recipe.epochs * len(data) / result.seconds, "train_seconds": result.seconds,
            "epochs": recipe.epochs, "train_images": len(data), "recipe": recipe_name,
            "precision": resolve_precision(device, "auto"), "model": model}  # fmt: skip


def part_airbench(data, device, tiny: bool, workdir: Path) -> dict:
    train_set = data.train.head(PER_CLASS_TINY["train"] if tiny else None)
    test_set = data.test.head(PER_CLASS_TINY["test"] if tiny else None)
    result = throughput("airbench", "airbench", train_set, device, 1 if tiny else None)
    model = result.pop("model")
    return {**result, "test_images": len(test_set), "test_accuracy": accuracy(model, test_set, device=device),
            "evaluation": "fp32, mean logits of each image and its mirror"}  # fmt: skip


def part_resnet18(data, device, tiny: bool, workdir: Path) -> dict:
    train_set = data.train.head(PER_CLASS_TINY["train"] if tiny else None)
    result = throughput("resnet18", "paper-sgd-cifar10", train_set, device, 1)
    result.pop("model")
    return result


def part_table3(data, device, tiny: bool, workdir: Path) -> dict:
    spec, fields = load_spec("table3"), {"methods": ["ue-s", "ops"], "seeds": [0]}
    if tiny:
        spec = shrunk(spec, "gpu", train_per_class=PER_CLASS_TINY["train"],
                      test_per_class=PER_CLASS_TINY["test"], **fields)  # fmt: skip
    else:
        spec = with_fields(spec, "gpu", **fields)
    context = StageContext(workdir / "artifacts", preloaded=(data,), device=str(device))
    outcome, entries = run_planned(plan_spec(spec, "gpu"), ResultsDB.in_memory(), context)
    outcome.raise_for_failures()
    column = spec.scales["gpu"]["victims"][0]["paper_column"]
    rows = protection_rows(entries, victim=0, augment=True, ratio=1.0, paper_column=column, seed=0)
    return {"rows": {row.method: dataclasses.asdict(row) for row in rows}, "settings": spec.scales["gpu"]}


def peak_memory(device: torch.device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "peak RSS of the whole process"


def part_pue(data, device, tiny: bool, workdir: Path) -> dict:
    tiny_options = {"surrogate": "tinycnn", "train_draws": 2, "noise_draws": 2, "train_batch_size": 16,
                    "noise_batch_size": 16}  # fmt: skip
    config = PROTECTORS.get("pue").Config(**(tiny_options if tiny else {}))
    pue = ProvablyUnlearnable(config, device)
    pue.generator = torch.Generator(device=device).manual_seed(0)
    train_set = data.train
    model = build_model(config.surrogate, 3, 10, (32, 32), *train_set.channel_stats())
    model = model.to(device=device, memory_format=MEMORY_FORMAT).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.surrogate_lr,
                                momentum=config.surrogate_momentum,
                                weight_decay=config.surrogate_weight_decay)  # fmt: skip
    images = channels_last(train_set.images[: config.train_batch_size].to(device).float() / 255)
    labels = train_set.labels[: config.train_batch_size].to(device)
    robust = [1.0]  # a history above robust_after_accuracy: the robust steps
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    pue.surrogate_update(model, optimizer, images, labels, robust)  # warm-up
    synchronize(device)
    started = time.perf_counter()
    pue.surrogate_update(model, optimizer, images, labels, robust)
    synchronize(device)
    surrogate_seconds = time.perf_counter() - started
    clean, targets = images[: config.noise_batch_size], labels[: config.noise_batch_size]
    with frozen(model):
        started = time.perf_counter()
        pue.noise_update(model, clean, targets, torch.zeros_like(clean), robust)
        synchronize(device)
    noise_seconds = time.perf_counter() - started
    memory, measure = peak_memory(device)
    batches = math.ceil(config.noise_subset * 50_000 / config.noise_batch_size)
    round_seconds = config.train_steps * surrogate_seconds + batches * noise_seconds
    return {"options": config.model_dump(), "surrogate_step_seconds": surrogate_seconds,
            "noise_step_seconds": noise_seconds, "peak_memory_bytes": memory, "memory_measure": measure,
            "robust_round_seconds_extrapolated": round_seconds,
            "extrapolation": f"{config.train_steps} surrogate steps + {batches} noise batches of 20% "
                             "of CIFAR-10's 50,000 images"}  # fmt: skip


def part_bf16_noise(data, device, tiny: bool, workdir: Path) -> dict:
    where = bf16_device(str(device))
    forced = where is None and tiny
    if where is None and not tiny:
        return {"available": False, "reason": f"{device} has no bf16 worth measuring (CPU {cpu_name()!r})"}
    where = where or device
    train_set = data.train.head(PER_CLASS_TINY["train"] if tiny else 1000)
    test_set = data.test.head(PER_CLASS_TINY["test"] if tiny else 200)
    options = {**preset_options("gpu")["ue-s"], **(TINY_PROTECT["ue-s"] if tiny else {})}
    recipe = get_recipe("airbench", **({"epochs": 1} if tiny else {}))
    row = {"available": True, "forced_on_a_cpu_without_bf16": forced, "options": options,
           "train_images": len(train_set), "test_images": len(test_set)}  # fmt: skip
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        noise = protect("ue-s", train_set, device=where, precision=precision, seed=0, **options)
        row[f"{precision}_seconds"] = time.perf_counter() - started
        row[f"{precision}_rounds"] = noise.config["rounds"]
        released = noise.apply(train_set)
        row[f"{precision}_accuracy"] = victim_accuracy(released, test_set, "airbench", recipe, 0, where)
    row["gap_points"] = 100 * (row["bf16_accuracy"] - row["fp32_accuracy"])
    return row


PARTS = {"airbench": part_airbench, "resnet18": part_resnet18, "table3": part_table3, "pue": part_pue,
         "bf16_noise": part_bf16_noise}  # fmt: skip


def device_info(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"name": name, "type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpu": cpu_name(), "threads": torch.get_num_threads()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--tiny", action="store_true", help="every part on a few hundred images (CPU check)")
    parser.add_argument("--data-root", default=None, help="where cifar10 is (default: dememo's data root)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    out = args.outdir / "gpu_check.json"
    device = resolve_device(args.device)
    report = {"tiny": args.tiny, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "device": device_info(device), "seconds": {}, "errors": {}}  # fmt: skip

    def write() -> None:
        temporary = out.with_suffix(".tmp")
        temporary.write_text(json.dumps(report, indent=1, default=str))
        temporary.replace(out)

    started = time.perf_counter()
    data = load_dataset("cifar10", args.data_root)
    report["seconds"]["data"] = time.perf_counter() - started
    write()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as workdir:
        for name, part in PARTS.items():
            started = time.perf_counter()
            try:
                report[name] = part(data, device, args.tiny, Path(workdir))
            except Exception as error:  # a failed part is recorded; the others still run
                report["errors"][name] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
            report["seconds"][name] = time.perf_counter() - started
            print(f"{name}: {report['seconds'][name]:.1f} s", file=sys.stderr, flush=True)
            write()
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
