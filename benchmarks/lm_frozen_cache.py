"""Frozen layers cached: one fine-tuning step and one scoring pass of SmolLM2-135M with only its
last N decoder layers trained, from the tokens through all 30 layers vs from the cached inputs
of layer 30 - N (dememo.lm.prefix). Checks that both give the same answer log-probabilities,
then reports seconds per step (median of --steps after one warm-up), the one-off cost of
caching, and the ratio. Usage:

    .venv/bin/python benchmarks/lm_frozen_cache.py [--max-words 100] [--batch 8] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from dememo.lm.batches import answer_scores, collate, encode, nll
from dememo.lm.data import LMData, study_examples
from dememo.lm.model import load_lm, set_trainable
from dememo.lm.prefix import cache_inputs, cached_layer
from dememo.lm.scoring import score

CPU = torch.device("cpu")


def seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-words", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--train-layers", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = LMData(tasks=("business", "sports"), train_per_task=args.batch, test_per_task=args.batch,
                  max_words=args.max_words)  # fmt: skip
    examples = study_examples(data).protected["business"][: args.batch]
    lm = load_lm("smollm2-135m")
    model, tokenizer, pad = (
        set_trainable(lm.model, args.train_layers),
        lm.tokenizer,
        lm.tokenizer.pad_token_id,
    )
    items = encode(examples, tokenizer)
    layer = cached_layer(model, args.train_layers)
    started = time.perf_counter()
    cached = cache_inputs(model, items, layer, pad, CPU)
    cache_seconds = time.perf_counter() - started
    full, short = collate(items, pad, CPU), collate(cached, pad, CPU)
    model.eval()
    with torch.no_grad():
        gap = float((answer_scores(model, full)[0] - answer_scores(model, short)[0]).abs().max())
    same = score("choice", model, items, tokenizer, CPU) == score("choice", model, cached, tokenizer, CPU)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step(batch):
        def run():
            optimizer.zero_grad(set_to_none=True)
            nll(model, batch).backward()
            optimizer.step()

        return run

    full_step, cached_step = seconds(step(full), args.steps), seconds(step(short), args.steps)
    full_score = seconds(lambda: score("choice", model, items, tokenizer, CPU), args.steps)
    cached_score = seconds(lambda: score("choice", model, cached, tokenizer, CPU), args.steps)
    print(json.dumps({
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "max_words": args.max_words, "batch": args.batch, "tokens_per_example": full.input_ids.shape[1],
        "train_layers": args.train_layers, "cached_layer": layer,
        "max_logp_difference": gap, "same_choice_scores": same,
        "cache_seconds_per_example": cache_seconds / len(items),
        "step_seconds": {"full": full_step, "cached": cached_step, "speedup": full_step / cached_step},
        "score_seconds_per_example": {"full": full_score / len(items), "cached": cached_score / len(items),
                                      "speedup": full_score / cached_score},
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
