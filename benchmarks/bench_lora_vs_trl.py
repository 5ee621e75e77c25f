"""LoRA training: ``persona-lab train`` against the plain TRL script a user would write, side by side.

Both sides train the same local model folder on the same JSONL data, with the same LoRA adapter
(r 8, alpha 16, dropout 0.05, all linear layers), batch, max length and number of steps. Each run is
a separate child process, so its peak resident memory is clean: the parent reads the child's
``ru_maxrss`` from ``os.wait4``. Runs are interleaved A/B (the order flips every repeat) so load on a
shared machine hits both sides alike.

- ``trl``: the script in :func:`trl_script` — ``AutoModelForCausalLM.from_pretrained(folder)``,
  a peft ``LoraConfig``, ``trl.DPOTrainer``/``SFTTrainer`` with TRL's config defaults otherwise
  (on transformers 5 that means the checkpoint's own dtype, bf16 autocast where supported, and
  activation checkpointing on). The only extra is ``include_num_input_tokens_seen="non_padding"``, a
  counter, so both sides count tokens the same way; and ``use_cpu`` without a GPU, which transformers
  demands when bf16 is on.
- ``persona-lab``: ``python -m persona_lab.cli.main train <method>`` with its defaults plus the same
  batch, length, steps and LoRA settings.

Reported per side: peak RSS of the process, tokens/s over ``trainer.train()`` (non-padding tokens
through the policy; for DPO chosen + rejected, not the reference pass), and the whole process's wall
time. Ratios are persona-lab / trl (memory: lower is better; tokens/s: higher is better), medians
over the repeats.

Data: prompts built from the package's summarization corpus (``persona_lab/data/prelude``): "Summarize
this for me" + the document's first ``--doc-chars`` characters; chosen = the document's first
sentences, rejected = a longer run of sentences (DPO); SFT completions are the chosen answers.

Usage::

    python benchmarks/bench_lora_vs_trl.py                              # SmolLM2-135M, dpo+sft, 8 steps, 2 repeats
    python benchmarks/bench_lora_vs_trl.py --methods dpo --steps 6 --repeats 3 --json out.json
    python benchmarks/bench_lora_vs_trl.py --base path/to/model --persona-lab-args "--bf16 false"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "persona_lab" / "data" / "prelude" / "summarization"
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}
LEARNING_RATE = {"dpo": 5e-5, "sft": 2e-4}  # persona-lab's defaults, used on both sides


# --------------------------------------------------------------------------------------------------
# data


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def write_data(folder: Path, *, n: int, doc_chars: int) -> dict[str, Path]:
    """Write ``dpo.jsonl`` and ``sft.jsonl`` (TRL conversational format) from the packaged corpus."""
    docs = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                docs.append(json.loads(line))
    docs = docs[:n]
    dpo, sft = [], []
    for doc in docs:
        text = doc["text"]
        sents = _sentences(text)
        prompt = [{"role": "user", "content": "Summarize this for me.\n\n" + text[:doc_chars]}]
        chosen = " ".join(sents[:2])
        rejected = " ".join(sents[2:8]) or text[:600]
        dpo.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}]})
        sft.append({"prompt": prompt, "completion": [{"role": "assistant", "content": chosen}]})
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, rows in (("dpo", dpo), ("sft", sft)):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        out[name] = path
    return out


# --------------------------------------------------------------------------------------------------
# the plain TRL side (runs in a child process)


def trl_script(method: str, model_dir: str, data: str, out: str, *, steps: int, batch: int, max_length: int) -> dict:
    """The script a TRL user writes: load the folder, add a LoRA config, train with TRL's defaults."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    dataset = load_dataset("json", data_files=data, split="train")
    peft_config = LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA)
    common = dict(output_dir=out, per_device_train_batch_size=batch, max_length=max_length, max_steps=steps,
                  learning_rate=LEARNING_RATE[method], logging_steps=1, save_strategy="no", report_to="none",
                  seed=0, disable_tqdm=True, include_num_input_tokens_seen="non_padding",
                  use_cpu=not torch.cuda.is_available())  # transformers refuses bf16 on CPU without it
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=dataset,
                             processing_class=tokenizer, peft_config=peft_config)
    else:
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(**common), train_dataset=dataset,
                             processing_class=tokenizer, peft_config=peft_config)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    trainer.save_model(out)
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    args = trainer.args
    return {"train_wall_s": wall, "train_tokens": tokens, "tokens_per_s": tokens / wall, "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else None,
            "settings": f"weights {model.dtype}, bf16 autocast {args.bf16}, "
                        f"activation ckpt {getattr(args, 'activation_checkpointing', None) or args.gradient_checkpointing}"}


# --------------------------------------------------------------------------------------------------
# the parent: interleaved runs


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS bytes of that child alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(output[-4000:])
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return proc.returncode, wall, peak


def one_run(side: str, method: str, args: argparse.Namespace, model_dir: str, data: Path, work: Path,
            env: dict[str, str], tag: str, extra: str = "") -> dict[str, Any]:
    out = work / f"{side}-{method}-{tag}"
    result_file = work / f"{side}-{method}-{tag}.json"
    if side == "trl":
        cmd = [sys.executable, __file__, "--child-trl", method, "--model-dir", model_dir, "--child-data", str(data),
               "--child-out", str(out), "--child-result", str(result_file), "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    else:
        cmd = [sys.executable, "-m", "persona_lab.cli.main", "train", method, "--base", model_dir, "--data", str(data),
               "--out", str(out), "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--max-length", str(args.max_length), "--seed", "0", "--lora-r", str(LORA["r"]),
               "--lora-alpha", str(LORA["lora_alpha"]), "--lora-dropout", str(LORA["lora_dropout"]),
               "--learning-rate", str(LEARNING_RATE[method]), "--quiet", "--overwrite",
               *shlex.split(args.persona_lab_args), *shlex.split(extra)]
    code, wall, peak = run_child(cmd, env)
    if code != 0:
        raise SystemExit(f"{side} {method} failed (exit {code}): {shlex.join(cmd)}")
    if side == "trl":
        record = json.loads(result_file.read_text())
        assert record["steps"] == args.steps
    else:
        summary = json.loads((out / "summary.json").read_text())
        cfg = json.loads((out / "train_config.json").read_text())["trl_args"]
        ckpt = cfg.get("activation_checkpointing") or cfg.get("gradient_checkpointing")
        record = {"train_wall_s": summary["wall_s"], "train_tokens": summary["train_tokens"],
                  "tokens_per_s": summary["train_tokens"] / summary["wall_s"], "steps": summary["steps"],
                  "final_loss": summary["final_loss"],
                  "settings": f"bf16 {cfg.get('bf16')}, activation ckpt {ckpt}"}
    record.update({"side": side, "method": method, "peak_rss_bytes": peak, "process_wall_s": wall})
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="smollm2-135m", help="model: a folder or anything `persona-lab train --base` takes")
    p.add_argument("--methods", default="dpo,sft")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-length", type=int, default=768)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--examples", type=int, default=32, help="rows of data written (>= steps * batch)")
    p.add_argument("--doc-chars", type=int, default=2400, help="characters of each document put in the prompt")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the children (0: unset)")
    p.add_argument("--persona-lab-args", default="", help="extra flags for `persona-lab train` (e.g. '--bf16 false')")
    p.add_argument("--also", action="append", default=[], metavar="LABEL=FLAGS",
                   help="one more persona-lab side with extra flags, run once per method in the first repeat, e.g. "
                        "'old-defaults=--no-gradient-checkpointing --bf16 false' (repeatable)")
    p.add_argument("--json", default=None, help="write every run and the ratios here")
    # child mode
    p.add_argument("--child-trl", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_trl:
        record = trl_script(args.child_trl, args.model_dir, args.child_data, args.child_out,
                            steps=args.steps, batch=args.batch_size, max_length=args.max_length)
        Path(args.child_result).write_text(json.dumps(record))
        return 0

    sys.path.insert(0, str(ROOT))
    from persona_lab.train.common import resolve_model_dir, split_base_spec

    model_dir = resolve_model_dir(split_base_spec(args.base)[0])
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_lora_vs_trl.") as tmp:
        work = Path(tmp)
        data = write_data(work / "data", n=max(args.examples, args.steps * args.batch_size), doc_chars=args.doc_chars)
        print(f"model {model_dir}; {args.steps} steps, batch {args.batch_size}, max length {args.max_length}, "
              f"LoRA {LORA}; load average {os.getloadavg()[0]:.1f}", flush=True)
        for rep in range(args.repeats):
            for method in methods:
                order = ("trl", "persona-lab") if rep % 2 == 0 else ("persona-lab", "trl")
                for side in order:
                    r = one_run(side, method, args, model_dir, data[method], work, env, tag=str(rep))
                    r["repeat"] = rep
                    r["load_avg"] = os.getloadavg()[0]
                    runs.append(r)
                    _print_run(r)
                if rep == 0:
                    for label, flags in (a.split("=", 1) for a in args.also):
                        r = one_run(label, method, args, model_dir, data[method], work, env, tag=str(rep), extra=flags)
                        r["repeat"], r["load_avg"], r["flags"] = rep, os.getloadavg()[0], flags
                        runs.append(r)
                        _print_run(r)
    _summarize(runs, methods, args)
    return 0


def _print_run(r: dict[str, Any]) -> None:
    print(f"  rep {r['repeat']} {r['method']:3s} {r['side']:11s} peak RSS {r['peak_rss_bytes'] / 2**30:5.2f} GiB  "
          f"{r['tokens_per_s']:7.1f} tok/s  train {r['train_wall_s']:6.1f} s  process "
          f"{r['process_wall_s']:6.1f} s  loss {r['final_loss']}  [{r['settings']}]  "
          f"load {r['load_avg']:.1f}", flush=True)


def _summarize(runs: list[dict[str, Any]], methods: list[str], args: argparse.Namespace) -> None:
    ratios = {}
    print("\nmedians over repeats (ratio = persona-lab / trl; memory: <= 1.2 is the target, tokens/s: >= 1/1.2)")
    for method in methods:
        med = {}
        for side in ("trl", "persona-lab"):
            rs = [r for r in runs if r["method"] == method and r["side"] == side]
            med[side] = {k: statistics.median(r[k] for r in rs) for k in ("peak_rss_bytes", "tokens_per_s",
                                                                           "process_wall_s")}
        ratio = {k: med["persona-lab"][k] / med["trl"][k] for k in med["trl"]}
        paired = {}  # per repeat: persona-lab / trl of that repeat, then the median over repeats
        for k in ("peak_rss_bytes", "tokens_per_s"):
            per_rep = []
            for rep in sorted({r["repeat"] for r in runs}):
                pair = {r["side"]: r[k] for r in runs if r["method"] == method and r["repeat"] == rep}
                if "trl" in pair and "persona-lab" in pair:
                    per_rep.append(pair["persona-lab"] / pair["trl"])
            paired[k] = per_rep
        ratios[method] = {"median": med, "ratio": ratio, "paired": paired}
        print(f"  {method}: peak RSS trl {med['trl']['peak_rss_bytes'] / 2**30:.2f} GiB, persona-lab "
              f"{med['persona-lab']['peak_rss_bytes'] / 2**30:.2f} GiB -> {ratio['peak_rss_bytes']:.2f}x; tokens/s "
              f"trl {med['trl']['tokens_per_s']:.1f}, persona-lab {med['persona-lab']['tokens_per_s']:.1f} -> "
              f"{ratio['tokens_per_s']:.2f}x; process wall {ratio['process_wall_s']:.2f}x")
        print(f"    per-repeat paired ratios: peak RSS {', '.join(f'{x:.2f}' for x in paired['peak_rss_bytes'])}; "
              f"tokens/s {', '.join(f'{x:.2f}' for x in paired['tokens_per_s'])}")
        for r in runs:
            if r["method"] == method and r["side"] not in ("trl", "persona-lab"):
                print(f"    {r['side']} ({r['flags']}), one run: peak RSS {r['peak_rss_bytes'] / med['trl']['peak_rss_bytes']:.2f}x"
                      f" trl, tokens/s {r['tokens_per_s'] / med['trl']['tokens_per_s']:.2f}x trl")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "ratios": ratios}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
