"""Exact token counts of long repeated contexts, from the tokenizer alone (the model never loads)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from persona_lab.core.messages import Message  # noqa: E402
from persona_lab.models.hf import HFChatModel  # noqa: E402
from persona_lab.testing.tiny import CHAT_TEMPLATE, IM_END, IM_START, PAD, save_tiny_model  # noqa: E402

WORDS = ["the", "of", "tea", "green", "mild", "river", "garden", "engine", "policy", "market", "violin", "harbor", "theory", "canvas", "orbit", "recipe"]


def bpe_folder(tmp_path: Path) -> Path:
    """The tiny model's folder with a real merging byte-level BPE tokenizer trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = save_tiny_model(tmp_path / "m")
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(20)) + ".\n" for _ in range(300)]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=[PAD, IM_START, IM_END],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=IM_END, pad_token=PAD)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return folder


def test_counts_equal_whole_text_tokenization_without_loading_the_model(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = bpe_folder(tmp_path)
    model = HFChatModel(str(folder))
    tok = AutoTokenizer.from_pretrained(folder)
    rng = random.Random(1)
    filler = [Message("user" if i % 2 == 0 else "assistant", " ".join(rng.choice(WORDS) for _ in range(30)))
              for i in range(40)]
    for item in range(8):
        messages = [Message("system", "be brief"), *filler[: 10 + item * 4],
                    Message("user", f"question {item}: the green tea?  ")]
        text = tok.apply_chat_template([m.to_dict() for m in messages], tokenize=False, add_generation_prompt=True)
        assert model.count_tokens(messages) == len(tok(text, add_special_tokens=False)["input_ids"])
    assert model._fragments_ok is True  # the self-check passed and the fast path is on
    assert not model.loaded  # only the tokenizer was read
    assert len(model._fragment_tokens) < 8 * 40  # the filler turns were counted once each, not per item
