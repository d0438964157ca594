"""Frozen layers computed once: when only the last N of L decoder layers train, the input of
layer L-N depends on the tokens and the frozen pretrained weights alone. ``cache_inputs``
computes it once per example set; every later forward pass (fine-tuning, unlearning, recovery,
evaluation) then runs only layers L-N.. L-1, the final norm and the head from it
(``dememo.lm.batches.logits_at``).

Caching checks the first item both ways (logits of the whole stack against those from the
cached input) and refuses a decoder whose forward does not pass ``inputs_embeds`` to its first
layer unchanged, rather than scoring it wrongly.
"""

from __future__ import annotations

import torch
from torch import nn

from dememo.errors import ConfigError
from dememo.lm.batches import Item, collate
from dememo.lm.model import decoder_layers, decoder_stack

TOLERANCE = 1e-4  # largest logit difference accepted between the two paths (float32)


def cached_layer(model: nn.Module, train_layers: int | None) -> int | None:
    """The decoder layer whose input is cached when ``train_layers`` train (None: nothing frozen
    to skip, i.e. every weight trains or every layer does)."""
    if train_layers is None:
        return None
    return len(decoder_layers(model)) - train_layers or None


@torch.no_grad()
def cache_inputs(
    model: nn.Module, items: list[Item], layer: int, pad_id: int, device: torch.device, batch_size: int = 16
) -> list[Item]:
    """``items`` with the input of decoder layer ``layer`` attached (kept on the CPU)."""
    if not 0 < layer < len(decoder_layers(model)):
        raise ConfigError(f"cannot cache inputs of decoder layer {layer} of {len(decoder_layers(model))}")
    was_training = model.training
    model.to(device).eval()
    cached: list[Item] = []
    try:
        with decoder_stack(model, 0, layer, norm=False):
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                batch = collate(chunk, pad_id, device)
                hidden = model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                     use_cache=False).last_hidden_state  # fmt: skip
                cached += [item.with_hidden(hidden[row, : len(item.ids)].cpu(), layer)
                           for row, item in enumerate(chunk)]  # fmt: skip
        if cached:
            check_same_logits(model, items[0], cached[0], pad_id, device)
    finally:
        model.train(was_training)
    return cached


def check_same_logits(model: nn.Module, item: Item, cached: Item, pad_id: int, device: torch.device) -> None:
    batch, top = collate([item], pad_id, device), collate([cached], pad_id, device)
    full = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    with decoder_stack(model, cached.layer):
        short = model(inputs_embeds=top.hidden, attention_mask=top.attention_mask, use_cache=False).logits
    gap = float((full - short).abs().max())
    if gap > TOLERANCE:
        raise ConfigError(
            f"{type(model).__name__}: logits from cached inputs of decoder layer {cached.layer} differ from "
            f"the full model's by {gap:.2g}; train every layer (train_layers: null)"
        )
