"""The local transformers backend, ``hf:<model>[+<adapter>]``.

``<model>`` is a local folder, a ``.gguf`` file (or a folder holding one), a packaged offline model
(:mod:`persona_lab.models.packaged`) or a hub id (when a hub is reachable). ``+<adapter>`` loads a
peft LoRA adapter folder on top; it is part of the spec, so cached answers of the base model and
of the adapted model never mix.

Design:
- Lazy: constructing a backend loads nothing; the first call loads the model once (thread-safe).
- GGUF files are dequantized once into a safetensors folder under the cache directory; loading that
  takes seconds instead of dequantizing every tensor again.
- Dynamic batching: ``generate`` calls from many threads go through one :class:`DynamicBatcher`,
  whose worker gathers requests for a few milliseconds and runs one ``model.generate`` per group of
  requests with the same decoding settings, left-padded.
- Decoding is ours, not the checkpoint's: the model's own ``generation_config`` (sampling defaults,
  repetition penalty) is replaced at load time, so ``GenerationParams`` alone decides the output.
  Greedy by default; sampling draws each row from its own seeded ``torch.Generator`` (never the
  global RNG), so a request's sample depends on its seed, not on what it was batched with.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from persona_lab.core.errors import BackendError, ConfigError, PersonaLabError
from persona_lab.core.messages import Message, as_messages
from persona_lab.core.seeding import stable_hash
from persona_lab.models.base import ChatRequest, Completion, GenerationParams, ScoreRequest, Usage
from persona_lab.models.cache import default_cache_dir
from persona_lab.models.decoding import GUIDED_CHOICE, REPETITION_PENALTY, extras
from persona_lab.models.packaged import (
    packaged_model,
    require_installed,
    resolve_packaged,
    unknown_packaged_error,
)
from persona_lab.models.registry import register_backend

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_BATCH_WAIT_S = 0.005


# --------------------------------------------------------------------------------------------------
# Where the weights come from


@dataclass(frozen=True)
class ModelSource:
    """A resolved ``<model>`` part of an ``hf:`` spec."""

    kind: str  # "folder", "gguf", "packaged" or "hub"
    location: str  # folder path, .gguf file path, packaged name, or hub id
    name: str  # short name for cache folders and messages


def split_hf_spec(rest: str) -> tuple[str, str | None]:
    """``"base+adapter"`` -> ``("base", "adapter")``; ``"base"`` -> ``("base", None)``."""
    rest = rest.strip()
    if not rest:
        raise ConfigError("empty hf spec", hint="use e.g. `hf:smollm2-135m`, `hf:/path/to/model` or `hf:Org/Model`")
    base, plus, adapter = rest.rpartition("+")
    if not plus:
        return rest, None
    if not base or not adapter:
        raise ConfigError(f"malformed hf spec {rest!r}", hint="write `hf:<model>+<adapter folder>`")
    return base, adapter


def resolve_source(model: str) -> ModelSource:
    """Classify ``model`` without loading it (cheap: a few ``stat`` calls and a ``find_spec``).

    Raises:
        ConfigError: an unknown packaged name, a missing local path, or a packaged model that is not
            installed (with the pip command).
    """
    entry = packaged_model(model)
    if entry is not None:
        if entry.kind != "chat":
            raise ConfigError(
                f"packaged model {entry.name!r} is a sentence encoder, not a chat model",
                hint="use it through persona_lab.models.packaged.encoder_path(); chat models: `hf:smollm2-135m`",
            )
        require_installed(entry)
        return ModelSource("packaged", entry.name, entry.name)
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"{model!r} is a file but not a .gguf", hint="pass a model folder or a .gguf file")
        return ModelSource("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if (path / "config.json").exists() or not ggufs:
            return ModelSource("folder", str(path.resolve()), path.name)
        if len(ggufs) > 1:
            raise ConfigError(
                f"folder {model!r} holds {len(ggufs)} .gguf files",
                hint="name one: `hf:" + str(ggufs[0]) + "`",
            )
        return ModelSource("gguf", str(ggufs[0].resolve()), ggufs[0].stem)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ConfigError(f"model path {model!r} does not exist", hint="check the path")
    if "/" in model:  # Org/Name
        return ModelSource("hub", model, model.replace("/", "--"))
    raise unknown_packaged_error(model)


# --------------------------------------------------------------------------------------------------
# GGUF -> safetensors, once

_convert_lock = threading.Lock()


def converted_dir(gguf_file: str | os.PathLike[str], *, name: str | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder that holds (or will hold) the safetensors conversion of ``gguf_file``.

    Keyed by path, size and mtime, so replacing the file triggers a fresh conversion.
    """
    path = Path(gguf_file).resolve()
    st = path.stat()
    key = stable_hash([str(path), st.st_size, st.st_mtime_ns], length=10)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "models" / f"{name or path.stem}-{key}"


def convert_gguf(gguf_file: str | os.PathLike[str], *, name: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Dequantize ``gguf_file`` into a bf16 safetensors folder (model and tokenizer), once.

    The folder is written under a temporary name and renamed into place, so a crash never leaves a
    half-written model and two processes converting at once both end with the same complete folder.
    bf16 halves the file against fp32; the rounding is far below the 4-bit quantization error
    already in the weights, and the model is upcast at load when it runs in float32.
    """
    target = converted_dir(gguf_file, name=name, cache_dir=cache_dir)
    if target.exists():
        return target
    with _convert_lock:
        if target.exists():
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        gguf = Path(gguf_file).resolve()
        log.info("converting %s to safetensors in %s (once)", gguf, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16,
                quantization_config=GgufConfig(dequantize=True),
            )
            clear_quantizer_markers(model)
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.exists():  # not a lost race with another process: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def clear_quantizer_markers(model: Any) -> None:
    """Make a GGUF-loaded (dequantized) model savable with ``save_pretrained``.

    transformers refuses to save a model that still carries a quantizer that is not serializable
    (the GGUF one never is), and would write ``quantization_config`` into ``config.json``. With
    ``GgufConfig(dequantize=True)`` the weights are plain tensors already; these markers are all that
    is left: ``model.hf_quantizer``, ``model.quantization_method``, ``model.is_quantized`` and the
    config's ``quantization_config`` / ``_is_quantized``. ``HfQuantizer.remove_quantization_config``
    drops the first ones; the rest are cleared here for older or newer transformers versions.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is None:
            continue
        if getattr(config, "quantization_config", None) is not None:
            del config.quantization_config
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False


# --------------------------------------------------------------------------------------------------
# Dynamic batching


@dataclass
class _Pending:
    request: ChatRequest
    future: Future[Completion]
    submitted: float
    caller: threading.Thread | None = None


class DynamicBatcher:
    """Turns ``generate`` calls from many threads into few batched calls.

    A daemon worker takes the first waiting request, keeps collecting until ``wait_s`` passes without
    a new one (or ``max_batch_size`` requests), splits what it has into groups by ``group_key`` and
    calls ``run(group)`` once per group. The callers it knows (live threads that called recently,
    e.g. a run's episode threads) need not be waited for: once each of them has a request in the
    batch it is served at once, without the quiet gap; a new caller is waited for as before. Each caller's future gets exactly its own completion, or the
    exception ``run`` raised (wrapped in :class:`BackendError` unless it is already a
    :class:`PersonaLabError`), so a failure never leaves a caller waiting. The worker exits after
    ``idle_s`` without work and is restarted by the next call.

    Args:
        run: serves one group; returns completions in the order of its input.
        group_key: requests with equal keys may share a ``run`` call.
        max_batch_size: the most requests in one ``run`` call.
        wait_s: how long to wait for company after the first request arrives.
        idle_s: how long an idle worker lives.
        name: thread name and error prefix.
    """

    MAX_WAIT_FACTOR = 10  # the longest gathering window, in units of wait_s

    def __init__(
        self,
        run: Callable[[list[ChatRequest]], list[Completion]],
        group_key: Callable[[ChatRequest], Hashable],
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        wait_s: float = DEFAULT_BATCH_WAIT_S,
        idle_s: float = 30.0,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self._run = run
        self._group_key = group_key
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.idle_s = idle_s
        self.name = name
        self._lock = threading.Lock()
        # One queue per worker: close() hands the old worker a stop marker behind its queued work,
        # while new calls go to a fresh worker, so nothing is ever left without a worker.
        self._queue: queue.Queue[_Pending | None] | None = None
        self.batches = 0  # run() calls made
        self.served = 0  # requests answered
        self.early = 0  # batches served without the quiet gap (every known caller in, or full)
        # caller thread -> when a batch last served it (weak: a finished thread drops out)
        self._callers: weakref.WeakKeyDictionary[threading.Thread, float] = weakref.WeakKeyDictionary()
        self._recent_s = 1.0  # how recently a caller must have called to be waited for by name

    def submit(self, requests: Sequence[ChatRequest]) -> list[Future[Completion]]:
        """Queue ``requests``; their futures resolve as the worker serves them."""
        now = time.perf_counter()
        me = threading.current_thread()
        pending = [_Pending(r, Future(), now, me) for r in requests]
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue()
                threading.Thread(target=self._loop, args=(self._queue,), name=self.name, daemon=True).start()
            for p in pending:
                self._queue.put(p)
        return [p.future for p in pending]

    def __call__(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Submit ``requests`` and wait for all of them."""
        return [f.result() for f in self.submit(requests)]

    def close(self) -> None:
        """Let the worker serve what is queued, then stop. Safe to call twice; a later call starts a
        new worker. Does not wait: callers still waiting get their answers as usual."""
        with self._lock:
            q, self._queue = self._queue, None
            if q is not None:
                q.put(None)

    def _loop(self, q: queue.Queue[_Pending | None]) -> None:
        while True:
            try:
                first = q.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:  # exit only if nobody queued work meanwhile
                    if q.empty():
                        if self._queue is q:
                            self._queue = None
                        return
                continue
            if first is None:
                return
            batch, stop = self._collect(q, first)
            self._serve(batch)
            if stop:
                return

    def _collect(self, q: queue.Queue[_Pending | None], first: _Pending) -> tuple[list[_Pending], bool]:
        """Gather until ``wait_s`` passes without a new request (each arrival extends the window, up
        to ``MAX_WAIT_FACTOR * wait_s`` in all): callers that start together but reach the queue a
        few ms apart (a loaded machine, a slow tokenizer) share one batch instead of splitting it."""
        batch = [first]
        now = time.perf_counter()
        deadline, cap = now + self.wait_s, now + self.wait_s * self.MAX_WAIT_FACTOR
        # the callers served in recent batches that are still alive: this batch waits for them only
        with self._lock:
            known = {t for t, when in self._callers.items() if when >= now - self._recent_s and t.is_alive()}
        missing = known - {first.caller}
        while True:
            if len(batch) >= self.max_batch_size or (known and not missing):
                self.early += 1  # nothing left to wait for
                break
            remaining = min(deadline, cap) - time.perf_counter()
            try:
                item = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            missing.discard(item.caller)  # type: ignore[arg-type]
            deadline = time.perf_counter() + self.wait_s
        # take what is queued already, up to the cap (it costs no wait)
        while len(batch) < self.max_batch_size:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _serve(self, batch: list[_Pending]) -> None:
        groups: dict[Hashable, list[_Pending]] = {}
        for p in batch:
            try:
                key = self._group_key(p.request)
            except BaseException as exc:  # a malformed request fails alone
                p.future.set_exception(exc)
                continue
            groups.setdefault(key, []).append(p)
        for group in groups.values():
            try:
                out = self._run([p.request for p in group])
                if len(out) != len(group):
                    raise RuntimeError(f"run returned {len(out)} completions for {len(group)} requests")
            except BaseException as exc:
                err = exc if isinstance(exc, PersonaLabError) else BackendError(
                    f"{self.name}: {type(exc).__name__}: {exc}",
                    hint="the model failed while generating; the cause is chained below this error",
                )
                if err is not exc:
                    err.__cause__ = exc
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            self.batches += 1
            self.served += len(group)
            now = time.perf_counter()
            # a caller counts as known while it calls at least every few batch durations
            self._recent_s = max(1.0, 4 * (now - min(p.submitted for p in group)))
            with self._lock:
                for p in group:
                    if p.caller is not None:
                        self._callers[p.caller] = now
            for p, c in zip(group, out):
                usage = replace(c.usage, latency_s=now - p.submitted)
                p.future.set_result(replace(c, usage=usage))


# --------------------------------------------------------------------------------------------------
# The model


def _group_key(request: ChatRequest) -> GenerationParams:
    # The seed is applied per row (see _SeededSampler), so it does not split groups.
    return replace(request.params, seed=None)


class HFChatModel:
    """A local transformers chat model behind the :class:`~persona_lab.models.base.ChatModel` seam.

    Also a :class:`~persona_lab.models.base.TokenCounter` and a :class:`~persona_lab.models.base.Scorer`.

    Args:
        model: folder, ``.gguf`` file, packaged name or hub id (see module docstring).
        adapter: a peft LoRA adapter folder to apply on top (merged into the weights at load).
        dtype: ``"auto"`` (float32 on CPU, for batch-independent greedy answers; the checkpoint's
            dtype on a GPU), or ``"float32"`` / ``"bfloat16"`` / ``"float16"``.
        device: ``"cpu"``, ``"cuda"``, ...; default: cuda when available, else cpu.
        max_batch_size: the most requests in one ``model.generate`` call.
        batch_wait_s: how long the batcher waits for more requests after the first.
        cache_dir: where GGUF conversions live; default :func:`default_cache_dir`.
    """

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        batch_wait_s: float = DEFAULT_BATCH_WAIT_S,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"unknown dtype {dtype!r}", hint="use auto, float32, bfloat16 or float16")
        self.model_name = model
        self.adapter = adapter
        self.dtype = dtype
        self.device = device
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.cache_dir = cache_dir
        self.source = resolve_source(model)  # cheap; fails fast on a bad name
        if adapter is not None and not Path(adapter).expanduser().is_dir():
            raise ConfigError(f"adapter folder {adapter!r} does not exist", hint="pass a folder written by peft's save_pretrained")
        self._load_lock = threading.Lock()
        self._compute_lock = threading.Lock()  # one forward pass at a time (score and generate)
        # A fast tokenizer is not re-entrant: calls from two threads at once can fail with
        # "Already borrowed", so every encode/decode goes through this lock.
        self._tok_lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._eos_ids: list[int] = []
        self._context_window: int | None = None
        self._counting_tok: Any = None  # the tokenizer alone, for counting before (or without) the model
        self._fragment_tokens: dict[Any, Any] = {}
        self._splitters: dict[int, re.Pattern[str]] = {}
        self._fragments_ok: bool | None = None
        self._fragment_checks_left = 3
        self.generate_calls = 0  # model.generate invocations (tests compare this to requests)
        self.batcher = DynamicBatcher(
            self._run_group, _group_key, max_batch_size=max_batch_size, wait_s=batch_wait_s,
            name=f"hf-batcher[{model}]",
        )

    @property
    def spec(self) -> str:
        return f"hf:{self.model_name}" + (f"+{self.adapter}" if self.adapter else "")

    # ---- loading -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load tokenizer and weights now (otherwise the first call does). Thread-safe, once."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load()

    def _model_dir(self) -> str:
        """A folder transformers loads quickly (or a hub id), converting a GGUF first if needed."""
        kind, location = self.source.kind, self.source.location
        if kind == "packaged":
            path = resolve_packaged(location, cache_dir=self.cache_dir)
            assert path is not None
            kind, location = ("gguf" if path.suffix == ".gguf" else "folder"), str(path)
        if kind == "gguf":
            return str(convert_gguf(location, name=self.source.name, cache_dir=self.cache_dir))
        return location

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        where = self._model_dir()
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            tok = AutoTokenizer.from_pretrained(where)
            config_dtype = _config_dtype(where)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=_choose_dtype(self.dtype, config_dtype, device))
        except (OSError, ValueError) as exc:
            hint = (
                "no model hub is reachable here: use a packaged model (`hf:smollm2-135m`) or a local folder"
                if self.source.kind == "hub" else "check that the folder holds config.json and the weights"
            )
            raise ConfigError(f"cannot load model {self.model_name!r}: {exc}", hint=hint) from exc
        if self.adapter is not None:
            model = _apply_adapter(model, self.adapter)
        model.to(device)
        model.eval()

        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        tok.padding_side = "left"
        eos = _as_list(model.generation_config.eos_token_id) + _as_list(tok.eos_token_id)
        self._eos_ids = list(dict.fromkeys(eos))
        # Our GenerationParams alone decide decoding: drop the checkpoint's sampling defaults and
        # penalties (a repetition penalty also punishes words of the prompt).
        model.generation_config = GenerationConfig(
            eos_token_id=self._eos_ids, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id
        )
        self._context_window = getattr(model.config, "max_position_embeddings", None)
        self._tokenizer = tok
        self._model = model

    # ---- TokenCounter ------------------------------------------------------------------------

    @property
    def context_window(self) -> int | None:
        """``max_position_embeddings`` of the model (reads only the config until the model loads)."""
        if self._context_window is None and self._model is None and self.source.kind == "folder":
            try:
                from transformers import AutoConfig

                self._context_window = getattr(AutoConfig.from_pretrained(self.source.location), "max_position_embeddings", None)
            except Exception:  # noqa: BLE001 - unknown is an honest answer for a probe
                return None
        return self._context_window

    def count_tokens(self, messages: Sequence[Any]) -> int:
        """Tokens of ``messages`` rendered with the chat template, generation prompt included
        (what a request with these messages costs). Exact, and cheap for long repeated contexts.

        Needs the tokenizer only (the model is not loaded for it). A tokenizer splits its added
        tokens (``<|im_start|>``, ...) out of the text before anything else, so a chat whose every
        turn starts with an added token costs the sum of its turns' tokens: each turn is rendered
        (after the first message, as the template would) and counted once, then memoized, so a
        filler of hundreds of turns is tokenized once per (filler, tokenizer), not once per item.
        The first calls compare this with rendering and tokenizing the whole text, and any
        mismatch switches to whole texts for good.
        """
        tok = self._tokenizer if self._tokenizer is not None else self._load_counting_tokenizer()
        msgs = as_messages(messages)
        if self._fragments_ok is False or not msgs:
            return self._count_whole(tok, self._render(msgs, add_generation_prompt=True, tokenizer=tok))
        counted = self._count_by_turns(tok, msgs)
        if self._fragment_checks_left > 0 or counted is None:
            exact = self._count_whole(tok, self._render(msgs, add_generation_prompt=True, tokenizer=tok))
            with self._tok_lock:
                self._fragment_checks_left = max(0, self._fragment_checks_left - 1)
                if counted is None or exact != counted:
                    self._fragments_ok = False
                    log.warning("%s: counting tokens turn by turn gave %s, not %d; counting whole texts from now on",
                                self.spec, counted, exact)
                elif self._fragment_checks_left == 0:
                    self._fragments_ok = True
            return exact
        return counted

    def _count_by_turns(self, tok: Any, msgs: Sequence[Message]) -> int | None:
        """The sum over turns (see :meth:`count_tokens`), or None when the template is not compositional."""
        first = msgs[0]
        memo = self._fragment_tokens
        head_key = ("\x00head", first.role, first.content)
        head = memo.get(head_key)
        try:
            if head is None:
                bare = self._render([first], add_generation_prompt=False, tokenizer=tok)
                prompted = self._render([first], add_generation_prompt=True, tokenizer=tok)
                suffix = prompted[len(bare):]
                if not prompted.startswith(bare) or (suffix and not self._starts_added(tok, suffix)):
                    return None
                head = (self._count_by_fragments(tok, bare), self._count_by_fragments(tok, prompted[len(bare):]), bare)
                memo[head_key] = head
            total = head[0] + head[1]
            for m in msgs[1:]:
                key = (first.role, first.content, m.role, m.content)
                n = memo.get(key)
                if n is None:
                    both = self._render([first, m], add_generation_prompt=False, tokenizer=tok)
                    if not both.startswith(head[2]):
                        return None
                    piece = both[len(head[2]):]
                    if not self._starts_added(tok, piece):
                        return None
                    n = memo[key] = self._count_by_fragments(tok, piece)
                total += n
        except Exception:  # noqa: BLE001 - a template that refuses a pair: count whole texts instead
            return None
        return total

    def _starts_added(self, tok: Any, text: str) -> bool:
        self._count_by_fragments(tok, "")  # builds the splitter
        return bool(self._splitters[id(tok)].match(text))

    def _load_counting_tokenizer(self) -> Any:
        with self._load_lock:
            if self._counting_tok is None:
                from transformers import AutoTokenizer

                self._counting_tok = AutoTokenizer.from_pretrained(self._model_dir())
        return self._counting_tok

    def _count_whole(self, tok: Any, text: str) -> int:
        with self._tok_lock:
            return len(tok(text, add_special_tokens=False)["input_ids"])

    def _count_by_fragments(self, tok: Any, text: str) -> int:
        splitter = self._splitters.get(id(tok))
        if splitter is None:
            added = sorted({t.content for t in tok.added_tokens_decoder.values()}, key=len, reverse=True)
            splitter = re.compile("(" + "|".join(map(re.escape, added)) + ")") if added else re.compile("(?!x)x")
            self._splitters[id(tok)] = splitter
        memo = self._fragment_tokens
        total = 0
        for i, part in enumerate(splitter.split(text) if text else ()):
            if i % 2:  # an added token
                total += 1
            elif part:
                n = memo.get(part)
                if n is None:
                    with self._tok_lock:
                        n = len(tok(part, add_special_tokens=False)["input_ids"])
                    memo[part] = n
                total += n
        return total

    # ---- ChatModel -------------------------------------------------------------------------------

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete each request; safe from many threads at once (they are batched together)."""
        if not requests:
            return []
        return self.batcher(requests)

    def _render(self, messages: Sequence[Message], *, add_generation_prompt: bool, tokenizer: Any = None) -> str:
        tok = tokenizer if tokenizer is not None else self._tokenizer
        dicts = [m.to_dict() for m in messages]
        if tok.chat_template is None:  # a base model: a plain transcript
            text = "".join(f"{m['role']}: {m['content']}\n\n" for m in dicts)
            return text + ("assistant: " if add_generation_prompt else "")
        return tok.apply_chat_template(dicts, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _encode(self, texts: list[str], **kwargs: Any) -> Any:
        """Tokenize rendered chats (their special tokens are in the text already), left-padded."""
        with self._tok_lock:
            return self._tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt", **kwargs)

    def _run_group(self, requests: list[ChatRequest]) -> list[Completion]:
        """One ``model.generate`` for requests sharing decoding settings (runs on the worker)."""
        import torch
        from transformers import (
            GenerationConfig,
            LogitsProcessorList,
            StoppingCriteriaList,
            StopStringCriteria,
        )

        self.load()
        model = self._model
        params = requests[0].params
        texts = [self._render(r.messages, add_generation_prompt=True) for r in requests]
        enc = self._encode(texts).to(model.device)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            eos_token_id=self._eos_ids,
            pad_token_id=self._tokenizer.pad_token_id,
        )
        procs: list[Any] = []
        extra = extras(params)  # backend extras (GenerationParams.extra_body, where the build has it)
        if extra.get(REPETITION_PENALTY):
            from transformers import RepetitionPenaltyLogitsProcessor

            procs.append(RepetitionPenaltyLogitsProcessor(float(extra[REPETITION_PENALTY])))
        if extra.get(GUIDED_CHOICE):
            with self._tok_lock:
                seqs = choice_sequences(self._tokenizer, extra[GUIDED_CHOICE])
            procs.append(ChoiceConstraint(seqs, self._eos_ids, prompt_len=int(enc["input_ids"].shape[1])))
        if not params.greedy:
            seeds = [r.params.seed for r in requests]
            procs.append(_SeededSampler(params.temperature, params.top_p, seeds))
        processors = LogitsProcessorList(procs) if procs else None
        stopping = None
        if any(params.stop):  # end rows early on a stop string; _completion cuts the text exactly
            with self._tok_lock:
                stopping = StoppingCriteriaList([StopStringCriteria(self._tokenizer, [s for s in params.stop if s])])
        with self._compute_lock, torch.inference_mode():
            out = model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=stopping,
            )
            self.generate_calls += 1
        new_tokens = out[:, enc["input_ids"].shape[1]:].tolist()
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(ids, int(n), params) for ids, n in zip(new_tokens, prompt_tokens)
        ]

    def _completion(self, ids: list[int], prompt_tokens: int, params: GenerationParams) -> Completion:
        """Decode the new tokens of one row: up to eos, then cut at the first stop string."""
        eos = set(self._eos_ids)
        end = next((i for i, t in enumerate(ids) if t in eos), None)
        body = ids if end is None else ids[:end]
        pad = self._tokenizer.pad_token_id
        completion_tokens = sum(1 for t in body if t != pad) + (end is not None)
        with self._tok_lock:
            text = self._tokenizer.decode(body, skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in params.stop if s) if i >= 0), default=None)
        if cut is not None:
            text, finish = text[:cut], "stop"
        else:
            finish = "stop" if end is not None else "length"
        return Completion(text, Usage(prompt_tokens, completion_tokens, 0.0), finish)

    # ---- Scorer ------------------------------------------------------------------------------

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each continuation's content given the chat before it.

        The chat plus the continuation is rendered with the chat template; only the tokens that
        overlap the continuation's content count (not the role header or end-of-turn marker).
        """
        self.load()
        out: list[float] = []
        for start in range(0, len(requests), self.max_batch_size):
            out.extend(self._score_batch(list(requests[start : start + self.max_batch_size])))
        return out

    def _score_batch(self, requests: list[ScoreRequest]) -> list[float]:
        import torch

        model = self._model
        texts, spans = [], []
        for r in requests:
            content = r.continuation.content
            if not content:
                raise ValueError("cannot score an empty continuation")
            text = self._render((*r.messages, r.continuation), add_generation_prompt=False)
            begin = text.rfind(content)
            if begin < 0:
                raise BackendError(
                    "the chat template altered the continuation's text, so its tokens cannot be located",
                    hint="score continuations without leading/trailing whitespace",
                )
            texts.append(text)
            spans.append((begin, begin + len(content)))
        enc = self._encode(texts, return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")
        ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count from the first real token
        with self._compute_lock, torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0].cpu()
        results = []
        for row, (begin, end) in enumerate(spans):
            s, e = offsets[row, 1:, 0], offsets[row, 1:, 1]
            keep = (s < end) & (e > begin) & (mask[row, 1:].cpu() == 1)
            if not bool(keep.any()):
                raise BackendError("the continuation produced no tokens to score")
            results.append(float(logp[row][keep].mean()))
        return results

    # ---- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the batching worker (after serving what is queued). The model stays loaded."""
        self.batcher.close()

    def __getstate__(self) -> dict[str, Any]:
        # The loaded model, locks and worker thread stay behind; the copy reloads lazily.
        return {
            "model": self.model_name, "adapter": self.adapter, "dtype": self.dtype, "device": self.device,
            "max_batch_size": self.max_batch_size, "batch_wait_s": self.batch_wait_s,
            "cache_dir": self.cache_dir,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("model"), **state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"HFChatModel({self.spec!r}, loaded={self.loaded})"


class _SeededSampler:
    """Samples every row from its own generator, then masks all other tokens so that greedy
    decoding picks the sample: per-request reproducible sampling, whatever shares the batch.

    A ``LogitsProcessor`` (duck-typed); applied after any the model adds itself.
    """

    def __init__(self, temperature: float, top_p: float, seeds: Sequence[int | None]) -> None:
        import torch

        self.temperature = temperature
        self.top_p = top_p
        self.generators = []
        for seed in seeds:
            g = torch.Generator()
            if seed is None:
                g.seed()  # fresh entropy, without touching the global RNG
            else:
                g.manual_seed(seed)
            self.generators.append(g)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            drop_sorted = cum - torch.softmax(sorted_logits, dim=-1) >= self.top_p  # keep the first past top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = torch.softmax(logits, dim=-1).cpu()
        chosen = [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(self.generators)]
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(len(chosen)), torch.tensor(chosen)] = 0.0
        return out


def choice_sequences(tokenizer: Any, choices: Sequence[str]) -> list[list[int]]:
    """Token ids of each choice as a model would start an answer with it (as is, capitalized,
    upper case, after a space), duplicates dropped."""
    out: list[list[int]] = []
    for choice in choices:
        for variant in dict.fromkeys((choice, choice.capitalize(), choice.upper(), " " + choice,
                                      " " + choice.capitalize())):
            ids = list(tokenizer.encode(variant, add_special_tokens=False))
            if ids and ids not in out:
                out.append(ids)
    return out


class ChoiceConstraint:
    """Restricts generation to one of token sequences, then eos (vLLM's ``guided_choice`` on hf).

    A ``LogitsProcessor`` (duck-typed): at each step a row may continue only along a sequence whose
    prefix it has generated, or end (eos) once it has completed one.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], eos_ids: Sequence[int], *, prompt_len: int) -> None:
        if not sequences:
            raise ValueError("a choice constraint needs at least one choice")
        self.sequences = [list(s) for s in sequences]
        self.eos_ids = list(eos_ids)
        self.prompt_len = prompt_len

    def allowed(self, generated: Sequence[int]) -> set[int]:
        """Token ids allowed after ``generated`` (the row's new tokens so far)."""
        k = len(generated)
        prefix = list(generated)
        ok = {s[k] for s in self.sequences if len(s) > k and s[:k] == prefix}
        if any(s == prefix for s in self.sequences) or not ok:
            ok.update(self.eos_ids)
        return ok

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row in range(scores.shape[0]):
            allowed = [t for t in self.allowed(input_ids[row, self.prompt_len:].tolist()) if t < scores.shape[1]]
            mask[row, allowed] = 0.0
        return scores + mask


def _as_list(x: int | list[int] | None) -> list[int]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [int(x)]


def _config_dtype(where: str) -> str | None:
    from transformers import AutoConfig

    dtype = getattr(AutoConfig.from_pretrained(where), "dtype", None)
    return None if dtype is None else str(dtype).removeprefix("torch.")


def _choose_dtype(requested: str, config_dtype: str | None, device: str) -> Any:
    """``auto`` is float32 on CPU and the checkpoint's own dtype elsewhere.

    Why float32 on CPU: greedy answers should not depend on which other requests shared the batch
    (under concurrency that is a matter of timing). In bf16 the rounding differs with the batch's
    shape and flips greedy choices: on SmolLM2-135M (8 prompts, 32 new tokens), 2 of 8 answers
    changed between one-at-a-time and batched runs in bf16, 0 of 8 in float32; `python
    benchmarks/bench_batching.py --model smollm2-135m --dtype bfloat16` repeats the check. bf16
    prefills faster on CPU but decodes at about the same speed (design/models.md), and short
    prompts with long answers are our common case; pass ``dtype="bfloat16"`` for long prompts.
    """
    import torch

    name = requested
    if requested == "auto":
        name = "float32" if device == "cpu" else (config_dtype or "float32")
    return getattr(torch, name)


def _apply_adapter(model: Any, adapter: str) -> Any:
    """Load a peft LoRA adapter onto ``model`` and merge it (merged weights generate as fast as the base)."""
    try:
        from peft import PeftModel
    except ImportError as exc:  # pragma: no cover - peft is a dependency
        raise ConfigError("loading an adapter needs peft", hint="pip install peft") from exc
    try:
        peft_model = PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load adapter {adapter!r}: {exc}", hint="pass a folder written by peft's save_pretrained") from exc
    return peft_model.merge_and_unload()


@register_backend(
    "hf",
    "hf:smollm2-135m",
    "local transformers: a folder, a .gguf, a hub id or a packaged offline model (smollm2-135m; "
    "qwen2.5-0.5b opt-in); `+<adapter dir>` adds a LoRA; concurrent requests are batched",
)
def _hf_backend(rest: str) -> HFChatModel:
    base, adapter = split_hf_spec(rest)
    return HFChatModel(base, adapter=adapter)
