"""Frozen layers cached (dememo.lm.prefix): the inputs of the first trained decoder layer,
computed once, give the full model's answer log-probabilities, gradients and training run."""

import copy

import pytest
import torch

from dememo.errors import ConfigError
from dememo.lm.batches import answer_scores, collate, encode, nll
from dememo.lm.model import load_lm, set_trainable
from dememo.lm.prefix import cache_inputs, cached_layer
from dememo.lm.scoring import score
from dememo.lm.train import LMRecipe, finetune
from dememo.text.tasks import Example

CPU = torch.device("cpu")


def examples():  # texts of different lengths: batches are padded
    words = ["match", "goal", "team", "league", "coach", "budget", "bank", "rate", "market", "tax"]
    return [Example("sport", " ".join(words[: 2 + i % 7]), i % 2) for i in range(12)]


@pytest.fixture
def tiny():
    lm = load_lm("tiny:16x2", texts=[e.prompt() for e in examples()], seed=3)
    set_trainable(lm.model, 1)
    items = encode(examples(), lm.tokenizer)
    pad = lm.tokenizer.pad_token_id
    return lm.model, items, cache_inputs(lm.model, items, 1, pad, CPU, batch_size=5), pad, lm.tokenizer


def test_cached_inputs_give_the_full_models_log_probabilities_and_gradients(tiny):
    model, items, cached, pad, tokenizer = tiny
    assert cached_layer(model, 1) == 1
    assert cached_layer(model, 2) is None and cached_layer(model, None) is None
    assert all(c.layer == 1 and c.hidden.shape == (len(c.ids), 16) for c in cached)
    full, short = collate(items, pad, CPU), collate(cached, pad, CPU)
    assert short.hidden is not None and full.hidden is None
    model.eval()
    logp_full, n_full = answer_scores(model, full)
    logp_short, n_short = answer_scores(model, short)
    assert torch.allclose(logp_full, logp_short, atol=1e-5) and torch.equal(n_full, n_short)
    assert score("choice", model, items, tokenizer, CPU) == score("choice", model, cached, tokenizer, CPU)
    grads = []
    for batch in (full, short):
        model.zero_grad()
        nll(model, batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])


def test_fine_tuning_from_cached_inputs_trains_the_same_weights(tiny):
    model, items, cached, pad, tokenizer = tiny
    recipe = LMRecipe(epochs=2, lr=1e-2, batch_size=4)
    trained = [finetune(copy.deepcopy(model), p, recipe, pad_id=pad, device=CPU) for p in (items, cached)]
    states = [dict(m.named_parameters()) for m in trained]
    changed = [n for n, p in states[0].items() if p.requires_grad]
    assert changed and all(torch.allclose(states[0][n], states[1][n], atol=1e-5) for n in changed)


def test_cached_inputs_need_the_layers_below_frozen(tiny):
    model, _, cached, pad, _ = tiny
    set_trainable(model, None)
    with pytest.raises(ConfigError, match="need every weight below it frozen"):
        answer_scores(model, collate(cached, pad, CPU))
    with pytest.raises(ConfigError, match="cannot cache inputs of decoder layer 2"):
        cache_inputs(model, cached, 2, pad, CPU)
