"""Prompt + answer sequences for a causal LM: the loss reads only the answer tokens (how
answers are scored: ``dememo.lm.scoring``).

The official RegText code fine-tunes on the whole formatted text (SFT: prompt, article and
answer); dememo's loss covers the answer tokens alone, so fine-tuning, unlearning and
recovery act on the task's answer, not on the articles' words.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from dememo.errors import ConfigError
from dememo.lm.model import answer_ids, check_frozen_below, decoder_stack
from dememo.text.tasks import Example

IGNORE = -100


@dataclass(frozen=True)
class Item:
    """One encoded example: prompt + answer token ids, the answer's length and text; with
    ``hidden`` the input of decoder layer ``layer`` at every position (``dememo.lm.prefix``)."""

    ids: tuple[int, ...]
    n_answer: int
    answer: str
    hidden: torch.Tensor | None = None  # (len(ids), hidden size)
    layer: int = 0

    @property
    def prompt(self) -> tuple[int, ...]:
        return self.ids[: -self.n_answer]

    def with_hidden(self, hidden: torch.Tensor, layer: int) -> Item:
        return replace(self, hidden=hidden, layer=layer)


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor
    labels: torch.Tensor  # IGNORE outside the answer
    hidden: torch.Tensor | None = None  # (B, T, H): cached input of decoder layer ``layer``
    layer: int = 0


def encode(examples: list[Example], tokenizer, eos: bool = False) -> list[Item]:
    """Prompt + answer token ids per example; with ``eos`` the answer ends with the end-of-text
    token (as the official RegText training text does), so that generation stops after it."""
    if eos and tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no end-of-text token to end the answers with")
    items = []
    for example in examples:
        prompt = tokenizer(example.prompt())["input_ids"]
        answer = answer_ids(tokenizer, example.answer) + ([tokenizer.eos_token_id] if eos else [])
        items.append(Item(tuple(prompt + answer), len(answer), example.answer))
    return items


def collate(items: list[Item], pad_id: int, device: torch.device) -> Batch:
    length = max(len(item.ids) for item in items)
    input_ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, IGNORE)
    for row, item in enumerate(items):
        n = len(item.ids)
        input_ids[row, :n] = torch.tensor(item.ids)
        mask[row, :n] = 1
        labels[row, n - item.n_answer : n] = input_ids[row, n - item.n_answer : n]
    batch = Batch(input_ids.to(device), mask.to(device), labels.to(device))
    if items[0].hidden is None:
        if any(item.hidden is not None for item in items):
            raise ConfigError("a batch mixes items with and without cached layer inputs")
        return batch
    if any(item.hidden is None or item.layer != items[0].layer for item in items):
        raise ConfigError("a batch mixes items with cached inputs of different decoder layers")
    hidden = items[0].hidden.new_zeros((len(items), length, items[0].hidden.shape[-1]))
    for row, item in enumerate(items):
        hidden[row, : len(item.ids)] = item.hidden
    return replace(batch, hidden=hidden.to(device), layer=items[0].layer)


def batches(
    items: list[Item],
    batch_size: int,
    pad_id: int,
    device: torch.device,
    shuffle: bool = False,
    rng: random.Random | None = None,
) -> Iterator[Batch]:
    order = list(range(len(items)))
    if shuffle:
        (rng or random.Random(0)).shuffle(order)
    for start in range(0, len(order), batch_size):
        yield collate([items[i] for i in order[start : start + batch_size]], pad_id, device)


def logits_at(model: nn.Module, batch: Batch, keep: torch.Tensor) -> torch.Tensor:
    """The model's logits at positions ``keep`` (B, len(keep), V): from the tokens through every
    layer, or from the cached input of decoder layer ``batch.layer`` through the layers above it
    (the same computation when the layers below are frozen, which is checked)."""
    if batch.hidden is None:
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep,
                     use_cache=False).logits  # fmt: skip
    check_frozen_below(model, batch.layer)
    with decoder_stack(model, batch.layer):
        return model(inputs_embeds=batch.hidden, attention_mask=batch.attention_mask, logits_to_keep=keep,
                     use_cache=False).logits  # fmt: skip


def answer_scores(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: summed answer log-probability and number of answer tokens."""
    targets = batch.labels[:, 1:]
    scored = targets != IGNORE
    # logits only where some row predicts an answer token (the vocabulary projection and its
    # softmax over every prompt position would dominate the cost)
    keep = scored.any(0).nonzero().flatten()
    logits = logits_at(model, batch, keep)
    targets, scored = targets[:, keep], scored[:, keep]
    logp = torch.gather(F.log_softmax(logits.float(), -1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * scored).sum(1), scored.sum(1)


def nll(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean negative log-likelihood per answer token."""
    logp_sum, n_tokens = answer_scores(model, batch)
    return -logp_sum.sum() / n_tokens.sum()
