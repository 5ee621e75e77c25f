"""LoRA training throughput on a GPU: DPO and SFT steps on a ~0.5B model built from a config.

The model is a Qwen2-0.5B-shaped causal LM (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864,
vocabulary 151,936, tied embeddings: 494M parameters) with *random* weights: the GPU machines cannot
download checkpoints, and throughput does not depend on the weights' values. The tokenizer is
persona-lab's tiny byte-level ChatML tokenizer; the data are random printable strings of fixed length,
so every step sees the same shapes.

For each method it trains with two or more settings and prints, per setting:

- tokens/s: non-padding tokens through the policy per second of steady-state training (the first
  ``--warmup`` steps are excluded; DPO counts chosen + rejected sequences, not the reference pass);
- MFU: model FLOPs utilization, ``6 · N · tokens/s / peak``, where N counts the parameters that do a
  matmul per token (all but the input embedding; the tied output head counted once) and peak is the
  device's dense bf16 tensor-core FLOP/s from the table below (``--peak-tflops`` overrides it).
  Assumptions, stated plainly: 6N is the full-fine-tuning convention (forward 2N, backward 4N). LoRA
  skips the base weights' gradient matmuls (backward ~2N), so its *real* FLOPs are nearer 4N per token
  for SFT, and 4N + 2N (the reference forward) = 6N for DPO; activation checkpointing adds another 2N
  of recomputation that 6N does not count. Attention score FLOPs are ignored (small at these lengths);
- peak memory: ``torch.cuda.max_memory_allocated`` (tensors only, not the allocator's cache).

Settings:

- ``trl-defaults``: TRL's own config defaults (batch 8, activation checkpointing on, bf16 autocast over
  fp32 weights), with a LoRA adapter r=8, alpha=16 on all linear layers;
- ``persona-lab``: persona-lab's defaults (bf16 weights + autocast where the device has native bf16,
  activation checkpointing on as in TRL), same batch and adapter, built through ``persona_lab.train``;
- ``persona-lab-2x-batch``: the same with twice the batch (16);
- ``persona-lab-packed`` (SFT only, only when flash-attn is installed): packing + padding-free.

Usage::

    python benchmarks/gpu_train.py                       # on a GPU: the 0.5B model
    python benchmarks/gpu_train.py --tiny                # seconds; also what runs on a CPU-only machine
    python benchmarks/gpu_train.py --methods dpo --steps 20 --seq-len 1024 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import random
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peak (no sparsity), FLOP/s, by a substring of torch.cuda.get_device_name().
# Checked in order: the first match wins. Vendor datasheet numbers.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H200", 989.4e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989.4e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("GH200", 989.4e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),  # with fp32 accumulation
]

QWEN2_05B = {
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
    "rope_theta": 1_000_000.0,
}
TINY = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
    "rope_theta": 10_000.0,
}


@dataclass
class Measurement:
    method: str
    setting: str
    steps: int
    batch_size: int
    seq_len: int
    tokens_per_s: float
    mfu: float | None
    peak_memory_gib: float | None
    step_time_s: float
    final_loss: float | None
    note: str = ""


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    for key, flops in PEAK_BF16_FLOPS:
        if key in device_name:
            return flops
    return None


def build_model(shape: dict[str, Any], pad_id: int, eos_id: int, *, device: str, bf16_weights: bool) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**shape, pad_token_id=pad_id, eos_token_id=eos_id, bos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    if bf16_weights:
        model = model.to(torch.bfloat16)
    return model


def matmul_params(model: Any) -> int:
    """Parameters used in a matmul per token: all but the input embedding, the output head once."""
    embed = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    tied = model.get_output_embeddings().weight is embed
    return total - embed.numel() + (embed.numel() if tied else 0)


def random_text(rng: random.Random, n: int) -> str:
    # Byte-level tokenizer without merges: one printable ASCII character is one token.
    return "".join(rng.choice(string.ascii_letters + string.digits + " .,") for _ in range(n))


def make_data(method: str, n: int, prompt_len: int, completion_len: int) -> Any:
    from datasets import Dataset

    rng = random.Random(0)
    rows = []
    for _ in range(n):
        prompt = [{"role": "user", "content": random_text(rng, prompt_len)}]
        if method == "dpo":
            rows.append({"prompt": prompt,
                         "chosen": [{"role": "assistant", "content": random_text(rng, completion_len)}],
                         "rejected": [{"role": "assistant", "content": random_text(rng, completion_len)}]})
        else:
            rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": random_text(rng, completion_len)}]})
    return Dataset.from_list(rows)


def _timing_callback(device: str) -> Any:
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """(time, tokens seen) at the end of every optimizer step, after the GPU has finished it."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if device == "cuda":
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))

    return StepTimer()


def run_setting(method: str, setting: str, opts: argparse.Namespace, shape: dict[str, Any], device: str,
                peak: float | None) -> Measurement:
    import torch
    from peft import LoraConfig

    from persona_lab.testing.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.padding_side = "right"
    bf16_ok = device == "cuda" and torch.cuda.is_bf16_supported()
    batch = opts.batch_size * (2 if setting == "persona-lab-2x-batch" else 1)
    steps = opts.steps + opts.warmup
    completion_len = opts.seq_len // 2
    prompt_len = opts.seq_len - completion_len - 16  # ~16 tokens of chat template
    data = make_data(method, steps * batch, prompt_len, completion_len)
    timer = _timing_callback(device)
    out = tempfile.mkdtemp(prefix=f"gpu_train_{method}_{setting}_")
    note = ""

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if setting == "trl-defaults":
        from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

        model = build_model(shape, tok.pad_token_id, tok.eos_token_id, device=device, bf16_weights=False)
        args_cls, trainer_cls = (DPOConfig, DPOTrainer) if method == "dpo" else (SFTConfig, SFTTrainer)
        args = args_cls(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, report_to="none",
                        logging_steps=1, save_strategy="no", include_num_input_tokens_seen="non_padding",
                        use_cpu=device == "cpu", bf16=bf16_ok, disable_tqdm=True, seed=0)
        note = f"grad ckpt {args.gradient_checkpointing}, bf16 autocast {args.bf16}, fp32 weights"
        trainer = trainer_cls(model=model, args=args, train_dataset=data, processing_class=tok,
                              peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                     task_type="CAUSAL_LM"),
                              callbacks=[timer])
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no raw log dicts on stdout
    else:
        from persona_lab.train import DPOTrainConfig, SFTTrainConfig, make_dpo_trainer, make_sft_trainer

        packed = setting == "persona-lab-packed"
        model = build_model(shape, tok.pad_token_id, tok.eos_token_id, device=device, bf16_weights=bf16_ok)
        if packed:
            model.set_attn_implementation("flash_attention_2")
        common = {"out": out, "max_steps": steps, "batch_size": batch, "max_length": opts.seq_len + 32,
                  "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "logging_steps": 1}
        if method == "dpo":
            run = make_dpo_trainer(DPOTrainConfig(**common), dataset=data, model=model, tokenizer=tok,
                                   callbacks=[timer])
        else:
            config = SFTTrainConfig(**common, packing=packed)
            run = make_sft_trainer(config, dataset=data, model=model, tokenizer=tok, callbacks=[timer])
        trainer = run.trainer
        note = (f"grad ckpt {trainer.args.gradient_checkpointing}, bf16 weights+autocast {trainer.args.bf16}"
                + (", packing + padding-free (flash-attn 2)" if packed else ""))

    trainer.train()
    # Steady state: from the end of the last warmup step (or of the first step) to the end of the last.
    marks = timer.marks
    start = max(opts.warmup, 1) - 1
    (t0, n0), (t1, n1) = marks[start], marks[-1]
    measured = len(marks) - 1 - start
    tokens_per_s = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
    base = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    n_matmul = matmul_params(base)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    measurement = Measurement(
        method=method,
        setting=setting,
        steps=measured,
        batch_size=batch,
        seq_len=opts.seq_len,
        tokens_per_s=tokens_per_s,
        mfu=(6 * n_matmul * tokens_per_s / peak) if peak else None,
        peak_memory_gib=(torch.cuda.max_memory_allocated() / 2**30) if device == "cuda" else None,
        step_time_s=(t1 - t0) / max(measured, 1),
        final_loss=losses[-1] if losses else None,
        note=note,
    )
    del trainer, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return measurement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny config (seconds); forced on CPU-only machines")
    parser.add_argument("--methods", default="dpo,sft", help="comma-separated: dpo, sft")
    parser.add_argument("--settings", default="trl-defaults,persona-lab,persona-lab-2x-batch,persona-lab-packed",
                        help="comma-separated settings to run (see the module docstring)")
    parser.add_argument("--steps", type=int, default=None, help="measured steps (default 10; tiny: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured first steps (default 2; tiny: 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="per-device batch (default 8; tiny: 2)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default 512; tiny: 64)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's bf16 peak, TFLOP/s")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    opts = parser.parse_args(argv)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tiny = opts.tiny or device == "cpu"
    opts.steps = opts.steps or (2 if tiny else 10)
    opts.warmup = opts.warmup if opts.warmup is not None else (1 if tiny else 2)
    opts.batch_size = opts.batch_size or (2 if tiny else 8)
    opts.seq_len = opts.seq_len or (64 if tiny else 512)
    shape = TINY if tiny else QWEN2_05B
    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = peak_flops(device_name, opts.peak_tflops) if device == "cuda" or opts.peak_tflops else None
    has_flash = importlib.util.find_spec("flash_attn") is not None and device == "cuda"

    import transformers
    import trl

    print(f"device: {device_name}; peak bf16: {peak / 1e12:.0f} TFLOP/s" if peak else f"device: {device_name}; peak: unknown (MFU n/a)")
    print(f"model: {'tiny' if tiny else 'Qwen2-0.5B-shaped'} random init; seq {opts.seq_len}, batch {opts.batch_size}, "
          f"{opts.steps} measured + {opts.warmup} warmup steps; torch {torch.__version__}, "
          f"transformers {transformers.__version__}, trl {trl.__version__}")
    results: list[Measurement] = []
    for method in [m.strip() for m in opts.methods.split(",") if m.strip()]:
        for setting in [s.strip() for s in opts.settings.split(",") if s.strip()]:
            if setting == "persona-lab-packed" and (method != "sft" or not has_flash):
                if method == "sft":
                    print(f"{method:4s} {setting:20s} skipped: flash-attn is not installed")
                continue
            try:
                m = run_setting(method, setting, opts, shape, device, peak)
            except torch.cuda.OutOfMemoryError as exc:  # a setting too big for this GPU is a result too
                print(f"{method:4s} {setting:20s} out of memory: {str(exc).splitlines()[0]}")
                gc.collect()
                torch.cuda.empty_cache()
                continue
            results.append(m)
            mfu = f"{100 * m.mfu:5.1f}%" if m.mfu is not None else "  n/a"
            mem = f"{m.peak_memory_gib:6.2f} GiB" if m.peak_memory_gib is not None else "     n/a"
            print(f"{method:4s} {setting:20s} batch {m.batch_size:3d}  {m.tokens_per_s:10.0f} tokens/s  MFU {mfu}  "
                  f"peak mem {mem}  {m.step_time_s:.3f} s/step  loss {m.final_loss:.3f}  ({m.note})", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps({"device": device_name, "peak_flops": peak, "tiny": tiny,
                                               "results": [m.__dict__ for m in results]}, indent=2))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
