"""How an LM's answer is scored; the rule is part of every LM artifact's key (``LMSetup.scoring``).

- ``choice``: the answer (of the task's "yes" and "no") whose first token the model ranks
  higher at the answer position: one forward pass, so frozen layers stay cached.
- ``generate``: the official RegText evaluation (AikyamLab/regtext, evaluation/test.py and
  compute_metrics.py): greedy generation of up to ``MAX_NEW_TOKENS`` tokens, the first line,
  lower-cased, without punctuation and extra whitespace, must equal the answer. Its prompts end
  with "Response:\\n" and dememo's with "Answer:", so the first *non-empty* line counts. Its
  training text ends with the end-of-text token, so under this rule the answers do too
  (``encode(eos=True)``). It runs the whole model, one example at a time.

Neither counts "Yes" as wrong, as an exact match of the answer token over the whole vocabulary
did. Every score also counts the "yes" answers: a model that answers one way scores 50% on a
balanced set whatever it learned.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dememo.errors import ConfigError
from dememo.lm.batches import Item, collate, logits_at
from dememo.lm.model import answer_ids
from dememo.registry import Registry
from dememo.text.tasks import ANSWERS

MAX_NEW_TOKENS = 4  # the answers are one word; the official prompt asks for at most 2
YES = ANSWERS[1]

Predict = Callable[[nn.Module, list[Item], object, torch.device, int], list[str]]
SCORING: Registry[Predict] = Registry("LM scoring rule")


@dataclass(frozen=True)
class Score:
    correct: int
    yes: int  # predictions equal to "yes"
    n: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def yes_share(self) -> float:
        return self.yes / self.n


def normalize(text: str) -> str:
    """Lower-cased, without punctuation, whitespace collapsed (SQuAD's rule without removing articles)."""
    text = "".join(ch for ch in text.lower().strip() if ch not in string.punctuation)
    return " ".join(text.split())


@torch.no_grad()
def score(rule: str, model: nn.Module, items: list[Item], tokenizer, device: torch.device,
          batch_size: int = 16) -> Score:  # fmt: skip
    """Accuracy and "yes" answers of ``model`` on ``items`` under scoring ``rule``."""
    predict = SCORING.get(rule)
    if not items:
        raise ConfigError("scoring: no examples")
    was_training = model.training
    model.to(device).eval()
    try:
        predictions = predict(model, items, tokenizer, device, batch_size)
    finally:
        model.train(was_training)
    correct = sum(p == item.answer for p, item in zip(predictions, items, strict=True))
    return Score(correct, sum(p == YES for p in predictions), len(items))


@SCORING.register("choice")
def choose(
    model: nn.Module, items: list[Item], tokenizer, device: torch.device, batch_size: int
) -> list[str]:
    """The answer whose first token has the larger logit where the answer begins."""
    first = [answer_ids(tokenizer, answer)[0] for answer in ANSWERS]
    if len(set(first)) < len(first):
        raise ConfigError(f"choice scoring needs answers {ANSWERS} to begin with different tokens")
    pad = tokenizer.pad_token_id
    predictions: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = collate(chunk, pad, device)
        where = torch.tensor([len(item.prompt) - 1 for item in chunk], device=device)
        keep = where.unique()
        logits = logits_at(model, batch, keep)[
            torch.arange(len(chunk), device=device), torch.searchsorted(keep, where)
        ]
        predictions += [ANSWERS[int(i)] for i in logits[:, first].argmax(-1)]
    return predictions


@SCORING.register("generate")
def generate(
    model: nn.Module, items: list[Item], tokenizer, device: torch.device, batch_size: int
) -> list[str]:
    """Greedy generation per prompt, normalised: its first non-empty line."""
    predictions = []
    for item in items:
        prompt = torch.tensor([item.prompt], device=device)
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=MAX_NEW_TOKENS,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)  # fmt: skip
        text = tokenizer.decode(out[0, prompt.shape[1] :], skip_special_tokens=True)
        lines = [line for line in text.splitlines() if line.strip()]
        predictions.append(normalize(lines[0]) if lines else "")
    return predictions
