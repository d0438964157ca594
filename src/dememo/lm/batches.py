"""Prompt + answer sequences for a causal LM: the loss and the exact-match check read
only the answer tokens."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dememo.lm.model import answer_ids
from dememo.text.tasks import Example

IGNORE = -100


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor
    labels: torch.Tensor  # IGNORE outside the answer


def encode(examples: list[Example], tokenizer) -> list[tuple[list[int], int]]:
    """(prompt + answer token ids, number of answer tokens) per example."""
    encoded = []
    for example in examples:
        prompt = tokenizer(example.prompt())["input_ids"]
        answer = answer_ids(tokenizer, example.answer)
        encoded.append((prompt + answer, len(answer)))
    return encoded


def collate(items: list[tuple[list[int], int]], pad_id: int, device: torch.device) -> Batch:
    length = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, IGNORE)
    for row, (ids, n_answer) in enumerate(items):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        labels[row, len(ids) - n_answer : len(ids)] = torch.tensor(ids[-n_answer:])
    return Batch(input_ids.to(device), mask.to(device), labels.to(device))


def batches(
    items: list[tuple[list[int], int]],
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


def answer_scores(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sequence: summed answer log-probability, number of answer tokens, and whether
    every answer token is the greedy choice (exact answer match)."""
    targets = batch.labels[:, 1:]
    scored = targets != IGNORE
    # logits only where some row predicts an answer token (the vocabulary projection and its
    # softmax over every prompt position would dominate the cost)
    keep = scored.any(0).nonzero().flatten()
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep).logits
    targets, scored = targets[:, keep], scored[:, keep]
    logp = torch.gather(F.log_softmax(logits.float(), -1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logp_sum = (logp * scored).sum(1)
    hits = (logits.argmax(-1) == targets) | ~scored
    return logp_sum, scored.sum(1), hits.all(1)


def nll(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean negative log-likelihood per answer token."""
    logp_sum, n_tokens, _ = answer_scores(model, batch)
    return -logp_sum.sum() / n_tokens.sum()


@torch.no_grad()
def accuracy(
    model: nn.Module,
    items: list[tuple[list[int], int]],
    pad_id: int,
    device: torch.device,
    batch_size: int = 16,
) -> float:
    """Share of examples whose answer is reproduced exactly by greedy decoding."""
    was_training = model.training
    model.eval()
    correct = sum(int(answer_scores(model, b)[2].sum()) for b in batches(items, batch_size, pad_id, device))
    model.train(was_training)
    return correct / len(items)
