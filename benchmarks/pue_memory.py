"""PUE robust-step memory: draw-by-draw backward (dememo) vs one graph over all draws.

Measures the peak bytes autograd holds for backward (saved tensors, via
saved-tensor hooks) during one robust surrogate step of PUE (all sigma levels),
for several draw counts, on random CIFAR-sized inputs. The baseline sums every
draw's loss into one graph before a single backward, as dememo did before issue 6.
The ratio baseline / dememo at the official 100 draws is what made the official
defaults impossible. Usage:

    .venv/bin/python benchmarks/pue_memory.py [--model resnet18] [--batch 16] [--draws 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from torch.func import functional_call

from dememo.models import build_model
from dememo.profiling import SavedBytes
from dememo.protect import PROTECTORS
from dememo.protect.pue import ProvablyUnlearnable


def one_graph_step(pue, model, optimizer, x, y) -> None:
    """The old way: every draw in one graph, one backward per sigma level."""
    for sigma in pue._sigmas():
        draws = pue.config.train_draws if sigma else 1
        total = sum(F.cross_entropy(functional_call(model, params, (x,)), y)
                    for params in pue._weight_draws(model, sigma, draws))  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        (total / draws).backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--draws", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    x, y = torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    rows = []
    for draws in args.draws:
        row = {"draws": draws}
        for name in ("dememo", "one_graph"):
            pue = ProvablyUnlearnable(PROTECTORS.get("pue").Config(train_draws=draws, sigma_max=0.05),
                                      torch.device("cpu"))  # fmt: skip
            pue.generator = torch.Generator().manual_seed(0)
            torch.manual_seed(0)
            model = build_model(args.model, 3, 10, (32, 32))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            with SavedBytes() as saved:
                if name == "dememo":
                    pue.surrogate_update(model, optimizer, x, y, history=[0.6])
                else:
                    one_graph_step(pue, model, optimizer, x, y)
            row[f"{name}_MiB"] = round(saved.peak / 2**20, 1)
        row["ratio"] = round(row["one_graph_MiB"] / row["dememo_MiB"], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    per_draw = (rows[-1]["one_graph_MiB"] - rows[0]["one_graph_MiB"]) / (rows[-1]["draws"] - rows[0]["draws"])
    summary = {"model": args.model, "batch": args.batch, "one_graph_MiB_per_draw": round(per_draw, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
