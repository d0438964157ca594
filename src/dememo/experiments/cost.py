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

The LM stages (lm-finetune, lm-unlearn, lm-recover) count *layer-token passes* instead: one
forward and backward of one token through one decoder layer. A stage trains its top N layers
(``train_layers``; all when unset) on batch-padded tokens x examples x epochs; with N below the
model's L layers the inputs of the first trained layer are cached once (L - N forward layers a
token) and every later pass, scoring included, runs N layers. Their throughput is an assumption
for SmolLM2-135M on one H100, not a measurement (see ``LM_LAYER_TOKENS_PER_SECOND``); every
optimizer step and scoring batch adds a fixed launch overhead, and greedy generation a fixed
time an example.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dememo.experiments.stages import Stage
from dememo.lm.model import SMOLLM2, TINY_PREFIX, tiny_shape
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

# Language models. One training pass of one token through one SmolLM2-135M decoder layer (3.54M
# weights) is about 6 x 3.54M = 21 MFLOP, 23 with attention over ~300 tokens. ASSUMED, not
# measured: one H100 runs the LM stages (float32, no TF32: PyTorch's default; eager, no fused
# kernels) at about 11.5 TFLOPS, 17% of its ~67 fp32 TFLOPS, i.e. 500,000 layer-token passes a
# second. For scale: the cpu scale counts 4.6M layer-token passes and took 16 min on 2 idle Xeon
# cores (docs/results/llm-study.md, 2026-12-03), about 4,800 a second with every overhead, so the
# assumption is ~100x those 2 cores (whose fp32 peak is ~200x below the H100's).
# benchmarks/gpu_check.py does not measure it yet.
LM_LAYER_TOKENS_PER_SECOND = 500_000
# A forward alone relative to a training pass: 1/3 (2 vs 6 FLOP a weight); measured 0.26-0.34 on
# the CPU above (benchmarks/lm_frozen_cache.py, 2026-12-02: scoring 0.13 s an example vs a cached
# training step of 3.10 s for 8, both through 2 layers; 28 frozen layers 11.4 s for 8).
LM_FORWARD = 1 / 3
LM_STEP_SECONDS = 0.02  # an optimizer step or scoring batch: kernel launches, Python, host batching (assumed)
LM_GENERATE_SECONDS = 0.05  # greedy generation of <= 4 tokens, one example: sequential launches (assumed)
LM_STAGE_SECONDS = 1.0  # copy the 0.5 GB float32 model, move it, load/save trained weights (assumed)
LM_LOAD_SECONDS = 20.0  # load and de-quantize the GGUF model once a process (assumed)
LM_LAYERS = {SMOLLM2: 30}
LM_SCORE_BATCH = 16  # dememo.lm.scoring.score's batch
# Tokens of a batch-padded example with SmolLM2's tokenizer, measured on BBC News (2026-12-03):
# prompt and answer ~30 tokens, ~1.5 tokens a word (batches of 16 padded to 180 tokens at 100
# words, 320-340 at 200); whole articles pad batches of 16 to about 900 words (mean 384, max 4,432).
LM_PROMPT_TOKENS = 30
LM_TOKENS_PER_WORD = 1.5
WHOLE_ARTICLE_WORDS = 900
# examples a task with train/test_per_task null: a category's articles (~425 after de-duplication,
# 0.8 / 0.2 of them in the default split) and as many others
BBC_PER_TASK = (680, 170)


@dataclass(frozen=True)
class Cost:
    passes: float = 0.0  # image passes on the device (training-step equivalents)
    cpu_seconds: float = 0.0  # host work that no device speeds up (and an LM's fixed overheads)
    lm_passes: float = 0.0  # layer-token passes of the LM stages (training-pass equivalents)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.passes + other.passes, self.cpu_seconds + other.cpu_seconds,
                    self.lm_passes + other.lm_passes)  # fmt: skip

    def gpu_seconds(self, stages: int = 1) -> float:
        return (self.passes / PASSES_PER_SECOND + self.lm_passes / LM_LAYER_TOKENS_PER_SECOND
                + stages * STAGE_SECONDS + self.cpu_seconds)  # fmt: skip


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
    if stage.kind in LM_COSTS:
        return LM_COSTS[stage.kind](stage, stages)
    if stage.kind not in ("train", "unlearn", "audit"):
        return Cost()
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


@dataclass(frozen=True)
class LMShape:
    """What an LM stage's work depends on, from the fine-tune config (setup, recipe) above it."""

    layers: int  # decoder layers of the model
    trained: int  # the top layers that train (and that every pass from cached inputs runs)
    tokens: float  # batch-padded tokens an example
    tasks: int
    train_per_task: int
    test_per_task: int
    scoring: str

    def train(self, examples: float, epochs: int, batch_size: int) -> Cost:
        """``epochs`` of training on ``examples``: layer-token passes and per-step overhead."""
        steps = epochs * math.ceil(examples / batch_size)
        return Cost(lm_passes=epochs * examples * self.passes(1.0), cpu_seconds=steps * LM_STEP_SECONDS)

    def passes(self, per_layer_token: float) -> float:
        """Layer-token passes of one example through the trained layers, each costing ``per_layer_token``."""
        return self.tokens * self.trained * per_layer_token

    def score(self, examples: float) -> Cost:
        """Scoring ``examples``: one forward of the trained layers (choice) or greedy generation
        through the whole model, one example at a time (generate)."""
        if self.scoring == "generate":
            return Cost(lm_passes=examples * self.tokens * self.layers * LM_FORWARD,
                        cpu_seconds=examples * LM_GENERATE_SECONDS)  # fmt: skip
        batches = math.ceil(examples / LM_SCORE_BATCH)
        return Cost(lm_passes=examples * self.passes(LM_FORWARD), cpu_seconds=batches * LM_STEP_SECONDS)

    def cache(self, examples: float) -> Cost:
        """Computing the first trained layer's inputs of ``examples`` (nothing when all layers train)."""
        frozen = self.layers - self.trained  # 0 when every layer trains: nothing cached
        return Cost(lm_passes=examples * self.tokens * frozen * LM_FORWARD)


def lm_layers(model: str) -> int:
    """Decoder layers of an LM source: SmolLM2's 30, a tiny model's, a folder's config.json (else 30)."""
    if model.startswith(TINY_PREFIX):
        return tiny_shape(model)[1]
    if model in LM_LAYERS:
        return LM_LAYERS[model]
    try:
        return int(json.loads((Path(model).expanduser() / "config.json").read_text())["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return LM_LAYERS[SMOLLM2]


def lm_finetune_of(stage: Stage, stages: dict[str, Stage]) -> Stage:
    while stage.kind != "lm-finetune":
        stage = stages[stage.inputs["model"]]
    return stage


def lm_shape(finetune: Stage) -> LMShape:
    setup = finetune.config["setup"]
    data = setup["data"]
    layers = lm_layers(setup["model"])
    words = data["max_words"] if data["max_words"] is not None else WHOLE_ARTICLE_WORDS
    train, test = data["train_per_task"] or BBC_PER_TASK[0], data["test_per_task"] or BBC_PER_TASK[1]
    return LMShape(layers, min(setup["train_layers"] or layers, layers),
                   LM_PROMPT_TOKENS + LM_TOKENS_PER_WORD * words, len(data["tasks"]), train, test,
                   setup.get("scoring", "choice"))  # fmt: skip


def _first(stage: Stage, stages: dict[str, Stage], same: Callable[[Stage], object]) -> bool:
    """Whether ``stage`` is the first (smallest key) lm-finetune stage of the plan with its ``same``
    value: cached inputs and the loaded model are computed once a process (one local run)."""
    peers = [s.key for s in stages.values() if s.kind == "lm-finetune" and same(s) == same(stage)]
    return stage.key == min(peers, default=stage.key)


def _lm_finetune(stage: Stage, stages: dict[str, Stage]) -> Cost:
    shape, recipe = lm_shape(stage), stage.config["recipe"]
    examples = shape.tasks * shape.train_per_task
    tests = shape.tasks * shape.test_per_task
    cost = shape.train(examples, recipe["epochs"], recipe["batch_size"]) + shape.score(tests)
    cost = cost + Cost(cpu_seconds=LM_STAGE_SECONDS)
    setup = lambda s: json.dumps(s.config["setup"], sort_keys=True)  # noqa: E731
    if _first(stage, stages, lambda s: (setup(s), s.config["training_data"])):  # this part's inputs
        cost = cost + shape.cache(examples)
    if _first(stage, stages, setup):  # the test inputs and the pretrained model
        cost = cost + shape.cache(tests) + Cost(cpu_seconds=LM_LOAD_SECONDS)
    return cost


def _lm_unlearn(stage: Stage, stages: dict[str, Stage]) -> Cost:
    finetune = lm_finetune_of(stage, stages)
    shape, options = lm_shape(finetune), stage.config["options"]
    forget, retain = shape.train_per_task, (shape.tasks - 1) * shape.train_per_task
    epochs, batch = options.get("epochs", 1), options.get("batch_size", 8)
    method = stage.config["method"]
    if method == "rt":  # the pretrained model fine-tuned on the retained tasks with the parent's recipe
        recipe = finetune.config["recipe"]
        work = shape.train(retain, recipe["epochs"], recipe["batch_size"])
    elif method == "ft":
        work = shape.train(retain, epochs, batch)
    elif method == "npo":  # + a reference forward, + a retain batch every step (retain_weight > 0)
        retained = options.get("retain_weight", 1.0) > 0 and retain > 0
        extra = Cost(lm_passes=epochs * forget * shape.passes(LM_FORWARD + retained))
        work = shape.train(forget, epochs, batch) + extra
    else:  # ga and any other forget-set method
        work = shape.train(forget, epochs, batch)
    return work + shape.score(shape.tasks * shape.test_per_task) + Cost(cpu_seconds=LM_STAGE_SECONDS)


def _lm_recover(stage: Stage, stages: dict[str, Stage]) -> Cost:
    shape, config = lm_shape(lm_finetune_of(stage, stages)), stage.config
    recipe, attack = config["recipe"], min(config["attack_examples"], shape.train_per_task)
    cost = Cost(cpu_seconds=LM_STAGE_SECONDS)
    for eta in config["etas"]:
        if eta > 0:  # eta 0: the unlearned model as it is, scored only
            cost = cost + shape.train(attack, recipe["epochs"], recipe["batch_size"])
        cost = cost + shape.score(shape.test_per_task)
    return cost


LM_COSTS: dict[str, Callable[[Stage, dict[str, Stage]], Cost]] = {
    "lm-finetune": _lm_finetune, "lm-unlearn": _lm_unlearn, "lm-recover": _lm_recover,
}  # fmt: skip


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
