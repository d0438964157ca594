"""Does class-level unlearnability hold? The premise of the interplay study, measured.

The paper's class-level tables (14-17) start from a Before model that is near chance
on the protected classes' clean images (Duc 9.8, Dut 9.9 for UE-s in Table 14) and
high on the clean classes (Dct 93). This script trains one victim per variant on a
training set whose classes ``--protected`` carry a protection and reports, in fp32:
Duc (the protected classes' clean training images), Dut (their test images) and Dct
(the clean classes' test images), with the protection's generation time.

Variants (``--variants``, comma-separated names of the form ``method[:knob=value...]``):

- ``none``: no protection (the victim's clean accuracy on each group).
- ``ops``, ``ue-s``, ...: any registered protector, generated on the protected classes'
  samples only (dememo's class-level protect stage does this).
- ``scope=all``: generate on the *whole* training set, then keep the noise of the
  protected classes only (the other reading of the paper's unstated procedure).
- ``recipe=NAME``: the victim's recipe (default ``--recipe``).
- any other ``key=value``: a protector option (``max_rounds=30``, ``surrogate=fastnet``).

Usage::

    .venv/bin/python benchmarks/class_premise.py --dataset fashion-mnist --per-class 300 \
        --variants none ops ue-s:max_rounds=10 ue-s:scope=all:max_rounds=10 --recipe fast-noaug
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace

import torch

from dememo.data import load_dataset
from dememo.pipeline import fresh_model
from dememo.protect import protect
from dememo.train import accuracy, get_recipe, train


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    method, *knobs = text.split(":")
    options: dict[str, object] = {}
    for knob in knobs:
        key, value = knob.split("=", 1)
        options[key] = json.loads(value) if value[:1] in "0123456789-[{" else value
    return method, options


def protected_training_set(data, method: str, options: dict, protected: list[int], seed: int):
    """The training set with ``method``'s noise on the ``protected`` classes only, the seconds it
    took, and (for the min-min methods) the rounds run and the surrogate's last accuracy."""
    scope = options.pop("scope", "classes")
    if method == "none":
        return data, 0.0, {}
    started = time.perf_counter()
    classes = None if scope == "all" else protected
    perturbation = protect(method, data, seed=seed, classes=classes, **options)
    if scope == "all":  # keep the noise of the protected classes' samples only
        keep = torch.isin(data.labels[perturbation.indices], torch.tensor(protected))
        perturbation = replace(
            perturbation, indices=perturbation.indices[keep], groups=perturbation.groups[keep]
        )
    history = perturbation.config.get("surrogate_accuracy", [])
    rounds = {"rounds": len(history), "surrogate_acc": round(100 * history[-1], 1)} if history else {}
    return perturbation.apply(data), time.perf_counter() - started, rounds


def measure(args, variant: str, seed: int) -> dict[str, object]:
    dataset = load_dataset(args.dataset)
    train_set = dataset.train.head(args.per_class)
    test_set = dataset.test.head(args.test_per_class)
    method, options = parse_variant(variant)
    recipe = get_recipe(options.pop("recipe", args.recipe), epochs=args.epochs)
    protected = list(range(args.protected))
    trained_on, protect_seconds, rounds = protected_training_set(train_set, method, options, protected, seed)
    model = fresh_model(args.model, train_set, seed)
    started = time.perf_counter()
    train(model, trained_on, recipe, seed=seed, precision="fp32")
    in_protected = torch.isin(train_set.labels, torch.tensor(protected))
    test_protected = torch.isin(test_set.labels, torch.tensor(protected))
    return {
        "variant": variant, "seed": seed, "recipe": recipe.name,
        "Duc": 100 * accuracy(model, train_set.subset(torch.nonzero(in_protected).flatten())),
        "Dut": 100 * accuracy(model, test_set.subset(torch.nonzero(test_protected).flatten())),
        "Dct": 100 * accuracy(model, test_set.subset(torch.nonzero(~test_protected).flatten())),
        "protect_s": round(protect_seconds, 1), "train_s": round(time.perf_counter() - started, 1), **rounds,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="fastnet")
    parser.add_argument("--recipe", default="fast-noaug")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--protected", type=int, default=4, help="classes 0..K-1 are protected")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=["none", "ops", "ue-s:max_rounds=10"])
    args = parser.parse_args()
    print(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), **vars(args)}))  # fmt: skip
    for variant in args.variants:
        for seed in args.seeds:
            print(json.dumps(measure(args, variant, seed)), flush=True)


if __name__ == "__main__":
    main()
