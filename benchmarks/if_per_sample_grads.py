"""IF's per-sample gradients: torch.func (vmap over grad) vs. a Python loop over samples.

Both compute the same (B, d) matrix of loss gradients, one row per sample, for the
same model (eval mode, as IF uses it) on the same real CIFAR-10 images; the result is
checked to agree. Reports samples/s for each and the ratio. Usage:

    .venv/bin/python benchmarks/if_per_sample_grads.py [--data-root ../shared/data] [--samples 256]
        [--models fastnet resnet18] [--chunk 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from dememo.data import load_dataset
from dememo.models import build_model
from dememo.unlearn.influence import per_sample_gradients


def loop_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The straightforward baseline: one forward/backward per sample."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for x, y in zip(images, labels, strict=True):
        loss = F.cross_entropy(model(x.unsqueeze(0)), y.unsqueeze(0))
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


def vmap_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, chunk: int) -> torch.Tensor:
    return torch.cat(
        [
            per_sample_gradients(model, images[i : i + chunk], labels[i : i + chunk])
            for i in range(0, len(images), chunk)
        ]
    )


def timed(fn) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["fastnet", "resnet18"])
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset("cifar10", args.data_root).train
    images = data.images[: args.samples].float() / 255
    labels = data.labels[: args.samples]
    results = []
    for name in args.models:
        model = build_model(name, 3, 10, (32, 32), *data.channel_stats()).eval()
        vmapped, t_vmap = timed(lambda m=model: vmap_gradients(m, images, labels, args.chunk))
        looped, t_loop = timed(lambda m=model: loop_gradients(m, images, labels))
        error = float((vmapped - looped).abs().max() / looped.abs().max())
        results.append(
            {
                "model": name,
                "params": vmapped.shape[1],
                "samples": args.samples,
                "vmap_samples_per_s": args.samples / t_vmap,
                "loop_samples_per_s": args.samples / t_loop,
                "ratio": t_loop / t_vmap,
                "max_rel_difference": error,
            }
        )
        print(json.dumps(results[-1]))
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
