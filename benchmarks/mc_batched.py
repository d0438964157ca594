"""Monte-Carlo certification: batched weight samples (torch.func vmap) vs one model at a time.

Both sides evaluate the same N noisy weight samples (same seed, same noise chunks) on the
same images; the script checks that the metric values agree, then reports samples/s and
the ratio. Usage:

    .venv/bin/python benchmarks/mc_batched.py [--samples 64] [--chunk 32] [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from dememo.audit.montecarlo import loop_metric, noisy_metric
from dememo.data import load_dataset
from dememo.models import build_model


def timed(fn) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    values = fn()
    return values, time.perf_counter() - started


def case(name: str, model: torch.nn.Module, data, samples: int, chunk: int, sigma: float) -> dict:
    kwargs = {"sigma": sigma, "n": samples, "chunk": chunk, "seed": 0}
    noisy_metric(model, data.subset(range(8)), **{**kwargs, "n": 2})  # warm-up
    batched, batched_s = timed(lambda: noisy_metric(model, data, **kwargs))
    looped, looped_s = timed(lambda: loop_metric(model, data, **kwargs))
    return {
        "case": name,
        "images": len(data),
        "samples": samples,
        "chunk": chunk,
        "same_values": bool(torch.allclose(batched, looped, atol=1e-9)),
        "batched_samples_per_s": samples / batched_s,
        "loop_samples_per_s": samples / looped_s,
        "ratio": looped_s / batched_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--data-root", default=None, help="with CIFAR-10: also fastnet on 1,000 images")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    digits = load_dataset("digits")
    for arch in ("mlp", "tinycnn"):
        model = build_model(arch, 1, 10, (8, 8), *digits.train.channel_stats())
        rows.append(case(f"{arch} / digits test", model, digits.test, args.samples, args.chunk, 0.01))
    if args.data_root:
        cifar = load_dataset("cifar10", args.data_root).test.head(100)
        model = build_model("fastnet", 3, 10, (32, 32), *cifar.channel_stats())
        rows.append(case("fastnet / CIFAR-10 test 1k", model, cifar, args.samples, args.chunk, 0.01))
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": torch.get_num_threads(), "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
