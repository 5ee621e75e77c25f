"""Tiny random chat models built in code, for tests that need a real transformers model.

No download, no hub: the tokenizer is a byte-level one whose vocabulary is written out here (the
256 byte symbols plus three special tokens), so it encodes any text and is identical on every
machine; the model is a small Llama built from a config with seeded random weights. Outputs are
gibberish, but every code path a real model takes (chat template, padding, eos, generate, LoRA) is
exercised in a second or so.

Typical use::

    model, tokenizer = tiny_chat_model(seed=0)
    folder = save_tiny_model(tmp_path / "tiny")       # then open_chat_model(f"hf:{folder}")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"

# ChatML, the format of SmolLM2 and Qwen2.5: the same code path as the packaged models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_tokenizer() -> Any:
    """A byte-level tokenizer (no merges) with ChatML special tokens and chat template.

    ``<|im_end|>`` is the eos token and ``<|pad|>`` the pad token; padding side is left, as for
    batched generation.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, IM_START, IM_END]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=PAD,
        padding_side="left",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_chat_model(
    seed: int = 0, *, hidden_size: int = 64, num_layers: int = 2, max_positions: int = 1024
) -> tuple[Any, Any]:
    """A random Llama causal LM and its tokenizer, float32, in eval mode.

    Args:
        seed: weights are a pure function of the seed (the global torch RNG is left untouched).
        hidden_size: width; 64 keeps a generate call in milliseconds. Benchmarks use wider ones.
        num_layers: decoder layers.
        max_positions: context window (``max_position_embeddings``).
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    heads = max(1, hidden_size // 16)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=0.2,  # wide logit gaps: greedy choices do not flip on float noise
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        # Zero the output rows of tokens that are not printable ASCII (control bytes, UTF-8 pieces),
        # so that generated text is readable and stop-string tests can name what they expect.
        readable = [i for t, i in tok.get_vocab().items() if _printable(tok.convert_tokens_to_string([t]))]
        mask = torch.zeros(config.vocab_size, dtype=torch.bool)
        mask[readable] = True
        mask[tok.eos_token_id] = True
        model.lm_head.weight[~mask] = 0.0
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.eval()
    return model, tok


def _printable(text: str) -> bool:
    return len(text) == 1 and (text.isascii() and text.isprintable() or text == "\n")


def save_tiny_model(directory: str | os.PathLike[str], seed: int = 0, **kwargs: Any) -> Path:
    """Write :func:`tiny_chat_model` (model and tokenizer) to ``directory``; ``hf:<directory>`` loads it.

    Extra keyword arguments go to :func:`tiny_chat_model`.
    """
    directory = Path(directory)
    model, tok = tiny_chat_model(seed, **kwargs)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
