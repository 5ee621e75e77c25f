"""ILQL (implicit language Q-learning, Snell et al. 2023) for the persuader, in one file.

Offline, value-based RL at the token level on whole dialogues (:mod:`persona_lab.train.dialogues`):

* a causal LM trunk with a LoRA adapter gives hidden states ``h_t`` over the chat-templated dialogue;
* two Q heads give ``Q_i(h_t)[a]`` for every vocabulary token ``a``, a V head gives ``V(h_t)``, and
  Polyak-averaged *target* copies of the Q heads give ``Q̄ = min_i Q̄_i``;
* for every state ``t`` whose next token ``a_t = x_{t+1}`` was written by the persuader:

      y_t    = r_t + γ · V(h_t')           t' = the next persuader-token state (persuadee tokens are the
                                           environment's transitions and are skipped); V := 0 after the
                                           last persuader token of a finished dialogue
      L_Q    = Σ_i mean_t (Q_i(h_t)[a_t] − y_t)²
      L_V    = mean_t |τ − 1{Q̄ < V}| · (Q̄(h_t)[a_t] − V(h_t))²      (expectile regression, τ ≈ 0.7)
      L_CQL  = Σ_i mean_t CE(Q_i(h_t), a_t)                            (conservative term)
      L      = L_Q + L_V + α_cql · L_CQL

  and after every optimizer step ``Q̄_i ← (1 − α) Q̄_i + α Q_i``.

Rewards sit on the last token of each persuader turn (the donation, on the turn that got the decision).

Economy: a full Q head is ``Linear(d, |V|)`` (28M parameters each for SmolLM2's 49k vocabulary); with
``head_rank > 0`` each Q head is *low-rank and tied to the frozen output embedding* E:
``Q(h) = E · B·A·h + b`` with ``A: d→r``, ``B: r→d`` (``head_rank=0`` gives the full heads).

Acting (:class:`ILQLScorer`, used by the ``ilql`` persuader): N candidate turns sampled from the
behaviour policy are re-ranked by ``β · Σ_t (Q̄(h_t)[a_t] − V(h_t))`` over each candidate's tokens —
best-of-N with the advantage, so no custom ``generate`` is needed.

A finished run leaves in ``out``: the LoRA adapter (``adapter_config.json``, ``adapter_model.safetensors``),
``ilql_heads.safetensors`` (Q, target Q and V heads), ``train_config.json`` (the resolved config, versions,
git revision), ``summary.json``, ``log_history.jsonl``, ``loss_curve.png`` and, with ``save_steps``,
``checkpoint-<step>/`` folders holding the same adapter, heads and config.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.train.common import (
    CONFIG_FILE,
    HISTORY_FILE,
    LOSS_CURVE_FILE,
    SUMMARY_FILE,
    LogFn,
    TrainConfig,
    TrainResult,
    config_record,
    load_base,
    lora_config,
    plot_loss_curve,
    resolve_device,
)
from persona_lab.train.dialogues import (
    SOURCES,
    DialogueRow,
    TokenView,
    Turn,
    agent_spans,
    chat_messages,
    load_dialogues,
    token_view,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

HEADS_FILE = "ilql_heads.safetensors"


# --------------------------------------------------------------------------------------------------
# 1. config


@dataclass(frozen=True)
class ILQLConfig(TrainConfig):
    """ILQL settings: the shared ones (:class:`TrainConfig`: base, data, out, steps, LoRA, ...) plus these.
    ``data`` is a dialogue JSONL (:func:`persona_lab.train.dialogues.save_dialogues`)."""

    method: ClassVar[str] = "ilql"

    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate of LoRA and heads (1e-5 to 5e-5 seen)"})
    lr_scheduler: str = field(default="constant", metadata={"help": "transformers scheduler name"})
    gamma: float = field(default=0.99, metadata={"help": "discount per persuader token"})
    tau: float = field(default=0.7, metadata={"help": "expectile of the V loss (0.5 = mean; higher = closer to max Q)"})
    cql_alpha: float = field(default=0.01, metadata={"help": "weight of the conservative CE term on the Q heads (0.01-0.1)"})
    polyak: float = field(default=0.005, metadata={"help": "target Q heads move this fraction towards the Q heads per step"})
    head_rank: int = field(default=64, metadata={"help": "rank of the Q heads tied to the output embedding; 0: full Linear(d, |V|) heads"})
    beta: float = field(default=4.0, metadata={"help": "acting: weight of the advantage Σ(Q̄ − V) when re-ranking candidates"})
    sources: str = field(default="original,regenerated", metadata={"help": "comma-separated row sources to train on (original, regenerated, prefix_only)"})
    exclude_controllers: str = field(default="oracle", metadata={"help": "comma-separated controllers whose regenerations are left out (the oracle's are an upper bound, not training data)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, lo, hi in (("gamma", 0.0, 1.0), ("tau", 0.0, 1.0), ("polyak", 0.0, 1.0)):
            value = getattr(self, name)
            if not lo < value <= hi:
                raise ConfigError(f"{name}={value!r}: must be in ({lo}, {hi}]", hint=f"{name}: {_help(name)}")
        if self.cql_alpha < 0 or self.head_rank < 0 or self.beta < 0:
            raise ConfigError("cql_alpha, head_rank and beta must not be negative",
                              hint=f"got cql_alpha={self.cql_alpha}, head_rank={self.head_rank}, beta={self.beta}")
        bad = [s for s in self.source_list if s not in SOURCES]
        if bad or not self.source_list:
            raise ConfigError(f"sources={self.sources!r}: unknown source(s) {bad}", hint=f"use {', '.join(SOURCES)}")

    @property
    def source_list(self) -> list[str]:
        return [s.strip() for s in self.sources.split(",") if s.strip()]


def _help(name: str) -> str:
    return next(f.metadata.get("help", "") for f in ILQLConfig.__dataclass_fields__.values() if f.name == name)


# --------------------------------------------------------------------------------------------------
# 2. heads


def make_heads(hidden: int, vocab: int, rank: int, *, seed: int = 0) -> Any:
    """Two Q heads, their target copies and a V head (an ``nn.Module``; built here so that importing
    this file does not import torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class QHead(nn.Module):
        """Q(h, ·) over the vocabulary: full ``Linear(d, |V|)``, or low-rank through the output embedding."""

        def __init__(self) -> None:
            super().__init__()
            if rank == 0:
                self.full = nn.Linear(hidden, vocab)
            else:
                self.down = nn.Linear(hidden, rank, bias=False)
                self.up = nn.Linear(rank, hidden, bias=False)
                self.bias = nn.Parameter(torch.zeros(vocab))
                nn.init.normal_(self.up.weight, std=0.02 / math.sqrt(rank))

        def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
            if rank == 0:
                return self.full(h)
            return F.linear(self.up(self.down(h)), embedding, self.bias)

    class ILQLHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.ModuleList([QHead(), QHead()])
            self.target_q = copy.deepcopy(self.q)
            self.target_q.requires_grad_(False)
            self.v = nn.Linear(hidden, 1)

        def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> tuple[list, list, torch.Tensor]:
            qs = [q(h, embedding) for q in self.q]
            with torch.no_grad():
                tqs = [q(h.detach(), embedding) for q in self.target_q]
            return qs, tqs, self.v(h).squeeze(-1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = ILQLHeads()
    return heads


def polyak_update(target: Any, online: Any, alpha: float) -> None:
    """``target ← (1 − alpha) · target + alpha · online``, parameter by parameter."""
    import torch

    with torch.no_grad():
        for t, p in zip(target.parameters(), online.parameters(), strict=True):
            t.mul_(1.0 - alpha).add_(p.detach(), alpha=alpha)


# --------------------------------------------------------------------------------------------------
# 3. losses


def next_state_indices(action_mask: torch.Tensor, done: torch.Tensor, lengths: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every state ``t``, the state whose value bootstraps ``y_t``, and whether that value is 0.

    ``action_mask[b, t]`` is 1 when the token after state ``t`` is a persuader token. The next state is
    the next ``t' > t`` with ``action_mask[b, t'] = 1``: the persuadee's tokens in between are
    environment transitions and are skipped. With no later persuader token the episode ended there:
    the value is 0 (``terminal``) when the dialogue is ``done``, else it bootstraps from the last
    state of the sequence (``lengths - 1``).
    """
    import torch

    B, S = action_mask.shape
    nxt = torch.empty((B, S), dtype=torch.long, device=action_mask.device)
    following = torch.full((B,), S, dtype=torch.long, device=action_mask.device)
    for t in range(S - 1, -1, -1):
        nxt[:, t] = following
        following = torch.where(action_mask[:, t] > 0, torch.full_like(following, t), following)
    none_after = nxt >= S
    terminal = none_after & done.bool()[:, None]
    last = (lengths.long() - 1).clamp(min=0)[:, None].expand(B, S)
    nxt = torch.where(none_after, torch.where(terminal, torch.zeros_like(nxt), last), nxt)
    return nxt, terminal


def ilql_losses(q_logits: Sequence[torch.Tensor], target_q_logits: Sequence[torch.Tensor], v: torch.Tensor,
                input_ids: torch.Tensor, agent_mask: torch.Tensor, rewards: torch.Tensor,
                attention_mask: torch.Tensor, done: torch.Tensor, *, gamma: float, tau: float,
                cql_alpha: float) -> dict[str, torch.Tensor]:
    """The ILQL losses of a batch (see the module docstring).

    Shapes: ``q_logits[i]`` and ``target_q_logits[i]`` (B, T, |V|) and ``v`` (B, T) at every position;
    ``input_ids``, ``agent_mask``, ``rewards``, ``attention_mask`` (B, T) aligned with the tokens (the
    reward of a turn on its last token); ``done`` (B,). State ``t`` is position ``t``; its action is
    token ``t + 1``.
    """
    import torch
    import torch.nn.functional as F

    actions = input_ids[:, 1:]
    m = (agent_mask[:, 1:] * attention_mask[:, 1:]).float()
    r = rewards[:, 1:].float()
    n = m.sum().clamp(min=1.0)

    def taken(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    qs = [taken(q) for q in q_logits]
    q_bar = torch.minimum(*[taken(q) for q in target_q_logits]).detach()
    value = v[:, :-1]
    nxt, terminal = next_state_indices(m, done, attention_mask.sum(1))
    v_next = v.detach().gather(1, nxt) * (~terminal).float()
    y = r + gamma * v_next

    loss_q = sum(((q - y) ** 2 * m).sum() / n for q in qs)
    weight = torch.where(q_bar < value, 1.0 - tau, tau)  # |τ − 1{Q̄ < V}|
    loss_v = (weight * (q_bar - value) ** 2 * m).sum() / n
    vocab = q_logits[0].shape[-1]
    loss_cql = sum(
        (F.cross_entropy(q[:, :-1].reshape(-1, vocab), actions.reshape(-1), reduction="none").view_as(m) * m).sum() / n
        for q in q_logits
    )
    loss = loss_q + loss_v + cql_alpha * loss_cql
    return {"loss": loss, "loss_q": loss_q.detach(), "loss_v": loss_v.detach(), "loss_cql": loss_cql.detach(),
            "q_mean": (qs[0] * m).sum().detach() / n, "v_mean": (value * m).sum().detach() / n}


# --------------------------------------------------------------------------------------------------
# 4. model plumbing


def trunk_of(model: Any) -> Any:
    """The decoder stack without the LM head (a PeftModel's LoRA layers live inside it)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, base.base_model_prefix)


def output_embedding(model: Any) -> torch.Tensor:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_output_embeddings().weight.detach()


def hidden_states(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return trunk_of(model)(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def collate(views: Sequence[TokenView], pad_id: int, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Right-pad token views into a batch."""
    import torch

    T = max(len(v.input_ids) for v in views)

    def pad(rows: list[list[Any]], value: Any, dtype: Any) -> torch.Tensor:
        return torch.tensor([list(r) + [value] * (T - len(r)) for r in rows], dtype=dtype, device=device)

    return {
        "input_ids": pad([list(v.input_ids) for v in views], pad_id, torch.long),
        "attention_mask": pad([[1] * len(v.input_ids) for v in views], 0, torch.long),
        "agent_mask": pad([list(v.agent_mask) for v in views], 0, torch.long),
        "rewards": pad([list(v.rewards) for v in views], 0.0, torch.float32),
        "done": torch.tensor([v.done for v in views], dtype=torch.bool, device=device),
    }


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


# --------------------------------------------------------------------------------------------------
# 5. training


@dataclass
class ILQLRun:
    """A prepared ILQL run: the LoRA model, the heads, the optimizer and the token views."""

    config: ILQLConfig
    model: Any
    tokenizer: Any
    heads: Any
    optimizer: Any
    scheduler: Any
    views: list[TokenView]
    device: str
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def prepare_ilql(config: ILQLConfig, *, rows: Sequence[DialogueRow] | None = None, model: Any = None,
                 tokenizer: Any = None) -> ILQLRun:
    """Load the data and base model, add the LoRA adapter and the heads, build the optimizer."""
    import torch
    from peft import PeftModel, get_peft_model
    from transformers import get_scheduler

    if rows is None:
        if not config.data:
            raise ConfigError("no training data given", hint="pass --data <dialogues.jsonl>")
        rows = load_dialogues(config.data)
    excluded = {c.strip() for c in config.exclude_controllers.split(",") if c.strip()}
    rows = [r for r in rows if r.source in config.source_list and r.controller not in excluded]
    if config.max_samples:
        rows = rows[: config.max_samples]
    if not rows:
        raise ConfigError(f"no dialogues with source in {config.source_list} in {config.data or '<memory>'!r}",
                          hint="check --sources against the dataset's rows")
    device = resolve_device(config)
    if model is None:
        model, tokenizer = load_base(config, bf16=False)
    elif tokenizer is None:
        raise ConfigError("an in-memory model needs its tokenizer too", hint="pass tokenizer=...")
    if not isinstance(model, PeftModel):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = get_peft_model(model, lora_config(config))
    model.to(device).train()
    views = [token_view(r, tokenizer, max_length=config.max_length) for r in rows]
    emb = output_embedding(model)
    heads = make_heads(emb.shape[1], emb.shape[0], config.head_rank, seed=config.seed).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + [p for p in heads.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    total = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * len(views) / config.batch_size)
    warmup = int(config.warmup * total) if config.warmup < 1 else int(config.warmup)
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total)
    return ILQLRun(config, model, tokenizer, heads, optimizer, scheduler, views, device)


def train_step(run: ILQLRun, views: Sequence[TokenView]) -> dict[str, float]:
    """One optimizer step on ``views`` followed by the Polyak update of the target heads."""
    import torch

    cfg = run.config
    batch = collate(views, _pad_id(run.tokenizer), run.device)
    h = hidden_states(run.model, batch["input_ids"], batch["attention_mask"])
    qs, tqs, v = run.heads(h, output_embedding(run.model))
    out = ilql_losses(qs, tqs, v, batch["input_ids"], batch["agent_mask"], batch["rewards"], batch["attention_mask"],
                      batch["done"], gamma=cfg.gamma, tau=cfg.tau, cql_alpha=cfg.cql_alpha)
    run.optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    if cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    polyak_update(run.heads.target_q, run.heads.q, cfg.polyak)
    run.step += 1
    record = {"step": run.step, **{k: float(t.detach()) for k, t in out.items()}, "learning_rate": run.scheduler.get_last_lr()[0]}
    run.history.append(record)
    return record


def train_ilql(config: ILQLConfig, *, rows: Sequence[DialogueRow] | None = None, model: Any = None,
               tokenizer: Any = None, on_log: LogFn | None = None, overwrite: bool = False) -> TrainResult:
    """Train ILQL and save the adapter, heads, resolved config and logs to ``config.out``."""
    import numpy as np

    out = Path(config.out)
    if (out / HEADS_FILE).exists() and not overwrite:
        raise ConfigError(f"{config.out!r} already holds an ILQL run", hint="choose another --out or pass --overwrite")
    run = prepare_ilql(config, rows=rows, model=model, tokenizer=tokenizer)
    total = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * len(run.views) / config.batch_size)
    rng = np.random.default_rng(config.seed)
    order: list[int] = []
    start, tokens = time.perf_counter(), 0
    while run.step < total:
        if len(order) < config.batch_size:
            order += [int(i) for i in rng.permutation(len(run.views))]
        batch = [run.views[i] for i in order[: config.batch_size]]
        del order[: config.batch_size]
        record = train_step(run, batch)
        tokens += sum(len(v.input_ids) for v in batch)
        if on_log is not None and (run.step % config.logging_steps == 0 or run.step == total):
            on_log({**record, "max_steps": total})
        if config.save_steps and run.step % config.save_steps == 0 and run.step < total:
            save_ilql(run, out / f"checkpoint-{run.step}")  # each with its own train_config.json
    wall = time.perf_counter() - start
    save_ilql(run, out)
    losses = [(r["step"], r["loss"]) for r in run.history]
    result = TrainResult(method="ilql", out_dir=out, steps=run.step, losses=losses, train_tokens=tokens, wall_s=wall,
                         tokens_per_s=tokens / wall if wall > 0 else 0.0, peak_memory_bytes=0,
                         peak_memory_kind="unmeasured", examples=len(run.views), loss_curve=None,
                         model=run.model, tokenizer=run.tokenizer)
    result.loss_curve = plot_loss_curve(losses, out / LOSS_CURVE_FILE, title="ilql loss")
    atomic_write_json(out / SUMMARY_FILE, result.summary())
    return result


def save_ilql(run: ILQLRun, out: Path) -> None:
    """Adapter, heads, resolved config (beside the checkpoint) and the log history."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    run.model.save_pretrained(str(out))
    run.tokenizer.save_pretrained(str(out))
    save_file({k: t.detach().cpu().contiguous() for k, t in run.heads.state_dict().items()}, str(out / HEADS_FILE))
    atomic_write_json(out / CONFIG_FILE, config_record(run.config))
    atomic_write_text(out / HISTORY_FILE, "".join(json.dumps(h) + "\n" for h in run.history))


# --------------------------------------------------------------------------------------------------
# 6. acting: re-rank candidate turns by the advantage


class ILQLScorer:
    """Scores candidate persuader turns by ``β · Σ_t (Q̄(h_t)[a_t] − V(h_t))`` over their tokens.

    Args:
        model: the trunk with the trained LoRA adapter.
        tokenizer: its tokenizer.
        heads: the trained heads (:func:`make_heads`).
        beta: the advantage's weight (it only scales the score; the ranking is β-free for β > 0).
        device: where the model runs.
    """

    def __init__(self, model: Any, tokenizer: Any, heads: Any, *, beta: float = 4.0, device: str = "cpu",
                 max_length: int | None = None) -> None:
        self.model, self.tokenizer, self.heads, self.beta, self.device = model, tokenizer, heads, beta, device
        self.max_length = max_length

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> ILQLScorer:
        """Load a ``train_ilql`` output folder (its ``train_config.json`` names the base model)."""
        from peft import PeftModel
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / HEADS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
            raise ConfigError(f"{str(folder)!r} is not an ILQL run folder (no {HEADS_FILE} / {CONFIG_FILE})",
                              hint="pass the --out folder of an ILQL training run")
        stored = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["config"]
        stored.pop("method", None)
        config = ILQLConfig(**stored)
        base, tokenizer = load_base(config, bf16=False)
        model = PeftModel.from_pretrained(base, str(folder)).to(device).eval()
        emb = output_embedding(model)
        heads = make_heads(emb.shape[1], emb.shape[0], config.head_rank)
        heads.load_state_dict(load_file(str(folder / HEADS_FILE)))
        return cls(model, tokenizer, heads.to(device).eval(), beta=config.beta, device=device,
                   max_length=config.max_length)

    def score(self, turns: Sequence[Turn], candidates: Sequence[str]) -> list[float]:
        """Scores of each candidate as the next persuader turn after ``turns`` (the dialogue so far)."""
        import torch

        views, spans = [], []
        for text in candidates:
            messages = chat_messages([*turns, Turn("persuader", text)])
            ids, found = agent_spans(self.tokenizer, messages)
            last = [s for s in found if s[0] == len(messages) - 1]
            first, end = (last[0][1], last[0][2]) if last else (len(ids), len(ids) - 1)
            cut = max(0, len(ids) - self.max_length) if self.max_length else 0  # as token_view: keep the end
            ids = ids[cut:]
            views.append(TokenView(tuple(ids), (0,) * len(ids), (0.0,) * len(ids), True))
            spans.append((first - cut, end - cut))
        batch = collate(views, _pad_id(self.tokenizer), self.device)
        with torch.no_grad():
            h = hidden_states(self.model, batch["input_ids"], batch["attention_mask"])
            _, tqs, v = self.heads(h, output_embedding(self.model))
        q_bar = torch.minimum(*tqs)
        scores = []
        for b, (first, last) in enumerate(spans):
            total = 0.0
            for j in range(max(first, 1), last + 1):  # action x_j is taken in state j - 1
                total += float(q_bar[b, j - 1, batch["input_ids"][b, j]] - v[b, j - 1])
            scores.append(self.beta * total)
        return scores


_LOAD_LOCK = threading.Lock()
_LOADED: dict[str, ILQLScorer] = {}


def load_scorer_once(folder: str) -> ILQLScorer:
    """One scorer per folder and process, loaded under a lock: the runner's episode threads each build
    an agent, and two concurrent ``from_pretrained`` calls (whose empty-weights context is process-wide)
    left another thread's new heads on the meta device ("Cannot copy out of meta tensor")."""
    key = str(Path(folder).resolve())
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = ILQLScorer.load(key)
        return _LOADED[key]


def _register_loader() -> None:
    from persona_lab.agents.ilql_agent import SCORER_LOADERS

    SCORER_LOADERS["ilql"] = load_scorer_once


_register_loader()
