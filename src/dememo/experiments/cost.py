"""The counted work of a plan and its estimated GPU time (issue 20).

Work is counted per stage from its config alone, in *image passes*: one forward and backward
pass of the stage's network over one image. Other passes count by their cost relative to it,
measured on a CPU with the airbench network (``benchmarks/grid.py --calibrate``; the ratios
are taken to hold on a GPU too, an assumption): a forward alone, an input-gradient (PGD) step,
a per-sample gradient (IF) and a noise-only CSD step (TUE without its SSL term). Iterative
protections count their ``max_rounds`` (an upper bound: the stop rule may end them sooner).

GPU time = passes / ``PASSES_PER_SECOND`` + ``STAGE_SECONDS`` a stage + the host's CPU seconds
that no device speeds up: the MIA's SVC fits and the report and plots an audit writes. The
throughput is assumed, not measured: airbench94 trains 10 epochs of CIFAR-10 (500,000 image
passes) in about 3.5 s on an A100 (Jordan's airbench README), about 150,000 passes a second;
an H100 is faster, dememo's loop slower (no compilation, no fused kernels). Small-batch loops
(PUE's batch-128 draws) and noise-only steps are launch-bound on a GPU, so their estimate is
optimistic. ``benchmarks/gpu_check.py`` measures the throughput where a GPU is lent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from dememo.experiments.stages import Stage
from dememo.models import build_model, flip_evaluated
from dememo.train import get_recipe

PASSES_PER_SECOND = 150_000  # airbench-class network on one A100/H100 (assumed, see above)
# Loading inputs, rebuilding a release, hashing and writing a stage: the graph took about 0.4 s a
# stage beyond the stages' own time at smoke scale on the CPU below (interplay-class smoke, 22 stages).
STAGE_SECONDS = 0.5
REPORT_SECONDS = 0.5  # an audit's report.json and plots (an MIA stage took 0.9-1.1 s at smoke scale)
# Cost of one image in each kind of pass relative to a training step, airbench network in fp32,
# batch 128: medians of three runs of benchmarks/grid.py --calibrate on 2 cores of an Intel Xeon
# shared with other jobs (load 5-6; 35-60 training images/s; single runs varied by up to 40%).
FORWARD = 0.27
PGD = 0.59
PER_SAMPLE = 3.4
CSD = 0.0044
SVC_SECONDS = 1.17  # one RBF SVC fit on 2 x 2,000 ten-dimensional samples (same CPU, median of three)
SVC_EXPONENT = 1.9  # its growth with the sample count (0.30 s at 2 x 1,000)
MIA_SIGNALS = 3  # corr, prob, entro: one SVC each
SIZES = {"cifar10": (50_000, 10_000, 10), "cifar100": (50_000, 10_000, 100),
         "fashion-mnist": (60_000, 10_000, 10), "digits": (1_257, 540, 10)}  # fmt: skip


@dataclass(frozen=True)
class Cost:
    passes: float = 0.0  # image passes on the device (training-step equivalents)
    cpu_seconds: float = 0.0  # host work that no device speeds up

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.passes + other.passes, self.cpu_seconds + other.cpu_seconds)

    def gpu_seconds(self, stages: int = 1) -> float:
        return self.passes / PASSES_PER_SECOND + stages * STAGE_SECONDS + self.cpu_seconds


@cache
def views(model: str) -> int:
    """Evaluation passes per image: 2 for a model evaluated with a test-time flip."""
    return 2 if flip_evaluated(build_model(model, 3, 10, (32, 32))) else 1


def sizes(config: dict) -> tuple[int, int, int]:
    """(training images, test images, classes) of a train or protect config."""
    train, test, classes = SIZES.get(config["dataset"], (0, 0, 10))
    per_train, per_test = config.get("train_per_class"), config.get("test_per_class")
    return (min(train, per_train * classes) if per_train else train,
            min(test, per_test * classes) if per_test else test, classes)  # fmt: skip


def covered(options: dict, train: int, classes: int) -> float:
    chosen = train * len(options["classes"]) / classes if options.get("classes") else train
    return chosen * options.get("fraction", 1.0)


def error_minimizing(options: dict, n: float, train: int) -> float:
    """UE-s / UE-c (and PUE's draws): max_rounds of surrogate steps and a noise pass."""
    noise = n * options.get("noise_subset", 1.0)  # class-wise: the stratified subset
    draws = round(options.get("sigma_max", 0) / options.get("sigma_step", 1))
    surrogate = options["train_steps"] * min(options["train_batch_size"], n)
    per_round = surrogate * (1 + draws * options.get("train_draws", 0))
    per_round += noise * (options["pgd_steps"] * PGD * (1 + draws * options.get("noise_draws", 0)) + FORWARD)
    return options["max_rounds"] * per_round


def transferable(options: dict, n: float, train: int) -> float:
    """TUE: rounds of SimCLR steps (two views; none without the SSL term) and a noise pass."""
    batch = min(options["batch_size"], n)
    rounds = options.get("rounds") or options["epochs"] * math.ceil(
        math.ceil(n / batch) / options["train_steps"]
    )
    ssl = options["ssl_weight"] > 0
    per_image = CSD + (2 * PGD if ssl else 0)
    return rounds * (
        (2 * options["train_steps"] * batch if ssl else 0) + options["pgd_steps"] * n * per_image
    )


def targeted(options: dict, n: float, train: int) -> float:
    """TAP: a clean surrogate trained on the split, then restarts x steps of targeted PGD."""
    epochs = options.get("surrogate_epochs") or get_recipe(options["surrogate_recipe"]).epochs
    return epochs * train + options["restarts"] * n * (options["steps"] * PGD + FORWARD)


# Methods not listed here (OPS, LSP, AR, CUDA) make their noise without a network: no passes.
PROTECT_PASSES: dict[str, Callable[[dict, float, int], float]] = {
    "ue-s": error_minimizing, "ue-c": error_minimizing, "pue": error_minimizing,
    "tue": transferable, "tap": targeted,
}  # fmt: skip


def svc_seconds(per_side: float) -> float:
    return SVC_SECONDS * (2 * per_side / 4000) ** SVC_EXPONENT


def parent_train(stage: Stage, stages: dict[str, Stage]) -> dict:
    """The TrainConfig (as JSON) of the train stage a stage's model comes from."""
    while stage.kind != "train":
        stage = stages[stage.inputs["model"]]
    return stage.config["train"]


def forget_size(config: dict, train: int, classes: int) -> float:
    share = config["scenario"].get("protected_fraction", 0.9) if config["part"] == "Du" else 0.1
    return train / classes * (share if config["scenario"]["level"] == "subset" else 1.0)


def stage_cost(stage: Stage, stages: dict[str, Stage]) -> Cost:
    """The work of one stage (``stages``: the plan's stages by key, for its inputs)."""
    config = stage.config
    if stage.kind == "protect":
        train, _, classes = sizes(config)
        count = PROTECT_PASSES.get(config["method"])
        n = covered(config["options"], train, classes)
        return Cost(count(config["options"], n, train) if count else 0.0)
    if stage.kind not in ("train", "unlearn", "audit"):
        return Cost()  # LM stages: not counted here
    parent = parent_train(stage, stages)
    train, test, classes = sizes(parent)
    evaluate = FORWARD * views(parent["model"]) * (train + test)  # the sets a stage scores, at most
    if stage.kind == "train":
        return Cost(parent["recipe"]["epochs"] * train + evaluate)
    if stage.kind == "unlearn":
        forget = forget_size(config, train, classes)
        count = UNLEARN_PASSES.get(config["method"], lambda *args: 0.0)  # certified, SISA: not counted
        return Cost(count(config["options"], parent, train - forget, forget) + evaluate)
    return AUDIT_COSTS[config["job"]](config, stage, parent, (train, test, classes), evaluate)


def _if(options: dict, parent: dict, retain: float, forget: float) -> float:
    """IF: the mean forget and retain gradients and ``fisher_samples`` per-sample gradients."""
    return forget + retain + PER_SAMPLE * min(options.get("fisher_samples", 1024), retain)


UNLEARN_PASSES: dict[str, Callable[[dict, dict, float, float], float]] = {
    "rt": lambda options, parent, retain, forget: parent["recipe"]["epochs"] * retain,
    "ft": lambda options, parent, retain, forget: options.get("epochs", 10) * retain,
    "ga": lambda options, parent, retain, forget: options.get("epochs", 5) * forget,
    "if": _if,
}


def _mia(config: dict, stage: Stage, parent: dict, size: tuple[int, int, int], evaluate: float) -> Cost:
    per_side = config["options"].get("max_shadow", 2000) or size[1]
    return Cost(evaluate, REPORT_SECONDS + MIA_SIGNALS * svc_seconds(min(per_side, size[1])))


def _recover(config: dict, stage: Stage, parent: dict, size: tuple[int, int, int], evaluate: float) -> Cost:
    options, (train, test, classes) = config["options"], size
    pool = train / classes if options.get("target_class") is not None else train
    epochs = options.get("epochs") or (100 if parent["dataset"] == "cifar100" else 60)  # Table 7
    etas = options.get("etas", (0.0, 0.2, 0.4, 0.8, 1.6))
    attacked = len(stage.inputs)  # the audited model and every reference
    run = [eta for eta in etas if eta > 0 or options.get("batchnorm") == "update"]  # eta 0 frozen: no steps
    attack = len(run) * epochs * options.get("attack_fraction", 0.1) * pool
    return Cost(attacked * (attack + len(etas) * FORWARD * views(parent["model"]) * test), REPORT_SECONDS)


def _certify(config: dict, stage: Stage, parent: dict, size: tuple[int, int, int], evaluate: float) -> Cost:
    options, (_, test, classes) = config["options"], size
    scored = test / classes if options.get("target_class") is not None else test
    return Cost(options.get("samples", 256) * FORWARD * views(parent["model"]) * scored, REPORT_SECONDS)


AUDIT_COSTS: dict[str, Callable[..., Cost]] = {
    "accuracy": lambda config, stage, parent, size, evaluate: Cost(evaluate),
    "mia": _mia,
    "recover": _recover,
    "certify": _certify,
}


def plan_cost(stages: list[Stage]) -> tuple[Cost, int]:
    """The summed cost of the unique stages of a plan, and how many there are."""
    unique = {stage.key: stage for stage in stages}
    total = Cost()
    for stage in unique.values():
        total = total + stage_cost(stage, unique)
    return total, len(unique)


def estimated_gpu_minutes(stages: list[Stage]) -> float:
    """The plan's estimated time on one GPU (see the module's assumptions)."""
    cost, count = plan_cost(stages)
    return cost.gpu_seconds(count) / 60
