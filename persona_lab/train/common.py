"""Plumbing shared by the training methods: the common config, config resolution, model loading,
the peft ``LoraConfig``, the TRL run with its callbacks, and what a run writes to disk.

The methods (``sft.py``, ``dpo.py``, ``ipo.py``) are thin: each declares its config and hands TRL's
trainer class plus its method-specific TRL arguments to :func:`prepare_run`, then
:func:`finish_run` trains and writes the run folder. Heavy libraries (torch,
transformers, peft, trl) are imported inside functions, so building the CLI parser stays fast.

What a finished run leaves in ``out``::

    adapter_config.json, adapter_model.safetensors   the LoRA adapter (``hf:<base>+<out>`` loads it)
    tokenizer files                                  the tokenizer the adapter was trained with
    train_config.json                                the resolved config, library versions, git revision
    summary.json                                     steps, final loss, tokens/s, peak memory, wall time
    log_history.jsonl                                every logged step (loss, lr, TRL's metrics)
    loss_curve.png                                   the training loss by step
    checkpoint-<step>/                               intermediate checkpoints (``save_steps > 0``), each
                                                     with its own ``train_config.json``
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json, atomic_write_text, read_text
from persona_lab.core.provenance import environment_info

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

logger = logging.getLogger(__name__)

CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "log_history.jsonl"
LOSS_CURVE_FILE = "loss_curve.png"

BF16_CHOICES = ("auto", "true", "false")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Settings every training method shares. Methods subclass it and add their own fields.

    Resolution order: these defaults < a YAML file < command-line flags (:func:`resolve_config`).
    The resolved config is saved as ``train_config.json`` next to the adapter and every checkpoint.
    """

    method: ClassVar[str] = ""

    base: str = field(
        default="",
        metadata={
            "help": "base model: a folder, a packaged name (smollm2-135m), a hub id, or an hf spec "
            "(hf:<model>, hf:<base>+<adapter dir> to continue training an adapter)"
        },
    )
    data: str = field(
        default="",
        metadata={
            "help": "training data: an edit-world run dir (transitions.jsonl), a PrefEval run dir (items.jsonl), "
            "a JSONL file in TRL's format, a parquet file, or a folder written by datasets.save_to_disk"
        },
    )
    out: str = field(default="runs/train", metadata={"help": "output folder for the adapter, logs and checkpoints"})
    seed: int = field(default=0, metadata={"help": "seed for LoRA init, data order and dropout (TRL's set_seed)"})
    max_steps: int = field(
        default=-1, metadata={"help": "optimizer steps to run; -1 runs `epochs` passes over the data instead"}
    )
    epochs: float = field(default=1.0, metadata={"help": "passes over the data (used when max_steps is -1)"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak AdamW learning rate"})
    batch_size: int = field(default=4, metadata={"help": "examples (or preference pairs) per device per step"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps per optimizer step"})
    max_length: int = field(
        default=1024, metadata={"help": "tokens per sequence (prompt + completion); longer ones are truncated"}
    )
    lr_scheduler: str = field(
        default="cosine", metadata={"help": "transformers scheduler name: cosine, linear, constant, ..."}
    )
    warmup: float = field(
        default=0.0, metadata={"help": "linear warmup: a fraction of the steps if < 1, else a number of steps"}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (applies to LoRA weights)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 disables it)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha (the update is scaled by alpha/r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch input"})
    target_modules: str = field(
        default="all-linear",
        metadata={
            "help": "modules that get LoRA: 'all-linear' (every linear layer but the output head) or a "
            "comma-separated list of module names, e.g. q_proj,v_proj"
        },
    )
    bf16: str = field(
        default="auto",
        metadata={
            "help": "bf16 weights and autocast: auto (on where the device computes bf16 natively: a GPU with "
            "bf16, or a CPU with AVX512-BF16/AMX; else fp32), true, false",
            "choices": BF16_CHOICES,
        },
    )
    gradient_checkpointing: bool = field(
        default=True,
        metadata={"help": "recompute activations in the backward pass (TRL's default): keeps each layer's input "
                          "instead of everything its backward needs (with LoRA dropout ~30x less activation memory), "
                          "for one more forward per step; --no-gradient-checkpointing when memory is plentiful"},
    )
    device: str = field(
        default="auto",
        metadata={"help": "auto (GPU when present), cpu or cuda; under accelerate launch, accelerate decides",
                  "choices": DEVICE_CHOICES},
    )
    logging_steps: int = field(default=1, metadata={"help": "log the loss every this many optimizer steps"})
    save_steps: int = field(
        default=0, metadata={"help": "write a checkpoint every this many steps (0: only the final adapter)"}
    )
    max_samples: int = field(
        default=0, metadata={"help": "use only the first N examples of the data (0: all); for quick runs"}
    )

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r}: {why}", hint=f"fix `{name}` in the YAML or flags")

        for name in ("lora_r", "lora_alpha", "batch_size", "grad_accum", "max_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        for name in ("save_steps", "max_samples", "weight_decay", "max_grad_norm", "warmup"):
            if getattr(self, name) < 0:
                raise bad(name, "must not be negative")
        if self.max_steps == 0 or self.max_steps < -1:
            raise bad("max_steps", "must be a positive number of steps, or -1 to use `epochs`")
        if self.max_steps == -1 and self.epochs <= 0:
            raise bad("epochs", "must be positive when max_steps is -1")
        if self.learning_rate <= 0:
            raise bad("learning_rate", "must be positive")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise bad("lora_dropout", "must be in [0, 1)")
        if str(self.bf16).lower() not in BF16_CHOICES:
            raise bad("bf16", f"choose one of {', '.join(BF16_CHOICES)}")
        if self.device not in DEVICE_CHOICES:
            raise bad("device", f"choose one of {', '.join(DEVICE_CHOICES)}")
        if not self.target_modules.strip():
            raise bad("target_modules", "name at least one module, or 'all-linear'")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types, with the method name first."""
        return {"method": self.method, **dataclasses.asdict(self)}


C = TypeVar("C", bound=TrainConfig)


def config_fields(cls: type[TrainConfig]) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def resolve_config(
    cls: type[C],
    yaml_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> C:
    """Build a config: class defaults < the YAML file (a mapping of field names) < ``overrides``.

    ``overrides`` entries whose value is ``None`` are ignored (an unset flag keeps the YAML value).
    Unknown keys raise :class:`ConfigError` with a "did you mean".
    """
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update(_read_yaml(cls, Path(yaml_path)))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    names = {f.name: f for f in config_fields(cls)}
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=1)
            raise ConfigError(
                f"unknown {cls.method or 'training'} setting {key!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"valid settings: {', '.join(names)}",
            )
    return cls(**{k: _coerce(names[k], v, cls) for k, v in values.items()})


def _read_yaml(cls: type[TrainConfig], path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist", hint="pass the path of a YAML file to --config")
    try:
        loaded = yaml.safe_load(read_text(path, what="config file"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of setting: value")
    loaded = dict(loaded)
    method = loaded.pop("method", None)
    if method is not None and method != cls.method:
        raise ConfigError(
            f"config file {str(path)!r} is for method {method!r}, not {cls.method!r}",
            hint=f"run `persona-lab train {method}` with it, or change its `method:` line",
        )
    return loaded


def _coerce(f: dataclasses.Field, value: Any, cls: type[TrainConfig]) -> Any:
    """Check a YAML/flag value against the field's type (ints are accepted for floats)."""
    kind = type(f.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 5e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is str:
        if f.name == "bf16" and isinstance(value, bool):
            return "true" if value else "false"
        if f.name == "target_modules" and isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:  # pragma: no cover - every field is one of the above
        return value
    raise ConfigError(
        f"{cls.method or 'training'} setting {f.name}={value!r} should be "
        + {bool: "true or false", float: "a number", int: "an integer", str: "a string"}[kind],
        hint=f"{f.name}: {f.metadata.get('help', '')}",
    )


# --------------------------------------------------------------------------------------------------
# devices, precision, models


def resolve_device(config: TrainConfig) -> str:
    """``cpu`` or ``cuda`` for ``device=auto`` (accelerate overrides this under ``accelerate launch``)."""
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is visible", hint="use --device auto or --device cpu")
    if config.device != "auto":
        return config.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_bf16(config: TrainConfig) -> bool:
    """bf16 on for ``auto`` where the device has native bf16: a GPU with it (Ampere or newer), or a CPU
    with AVX512-BF16 or AMX, where oneDNN's bf16 matmuls run about twice as fast as fp32 and the
    weights take half the memory. Elsewhere bf16 is emulated and slower than fp32, so ``auto`` is off."""
    import torch

    choice = str(config.bf16).lower()
    if choice != "auto":
        return choice == "true"
    if resolve_device(config) == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); torch's probes are private, so
    a torch without them reads as no."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # noqa: BLE001 - a probe that fails means we cannot tell: stay in fp32
            continue
    return False


def lora_config(config: TrainConfig) -> Any:
    """The peft ``LoraConfig`` for a causal LM from the shared settings."""
    from peft import LoraConfig

    modules = config.target_modules.strip()
    targets: str | list[str] = modules if modules == "all-linear" else [m.strip() for m in modules.split(",") if m.strip()]
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def split_base_spec(base: str) -> tuple[str, str | None]:
    """``"hf:foo+bar"`` -> ``("foo", "bar")``; ``"foo"`` -> ``("foo", None)`` (the hf backend's grammar)."""
    from persona_lab.models.hf import split_hf_spec

    spec = base.strip()
    if not spec:
        raise ConfigError("no base model given", hint="pass --base <folder | packaged name | hub id | hf:<spec>>")
    return split_hf_spec(spec[3:] if spec.startswith("hf:") else spec)


def resolve_model_dir(name: str) -> str:
    """What transformers should load for ``name``, exactly as the hf backend resolves it: a folder, a
    ``.gguf`` (converted once to a cached safetensors folder), a packaged offline model, or a hub id."""
    from persona_lab.models.hf import convert_gguf, resolve_source
    from persona_lab.models.packaged import resolve_packaged

    source = resolve_source(name)
    kind, location = source.kind, source.location
    if kind == "packaged":
        path = resolve_packaged(location)
        assert path is not None
        kind, location = ("gguf" if path.suffix == ".gguf" else "folder"), str(path)
    if kind == "gguf":
        return str(convert_gguf(location, name=source.name))
    return location


def load_base(config: TrainConfig, *, bf16: bool) -> tuple[Any, Any]:
    """Load the base causal LM and tokenizer (plus a trainable adapter for ``<base>+<adapter>``).

    Weights are loaded in bf16 when ``bf16`` is on (halves memory; LoRA weights stay fp32), else fp32.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, adapter = split_base_spec(config.base)
    path = resolve_model_dir(name)
    dtype = torch.bfloat16 if bf16 else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(adapter or path)
    except Exception:  # noqa: BLE001 - an adapter folder without tokenizer files falls back to the base
        tokenizer = None
    try:
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise ConfigError(
            f"cannot load base model {name!r}: {exc}",
            hint="pass a folder with config.json and weights, a packaged name (`persona-lab ls models`), "
            "or a hub id on a machine that can reach the hub",
        ) from None
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ConfigError(
                f"adapter folder {adapter!r} has no adapter_config.json",
                hint="pass the `--out` folder of an earlier `persona-lab train` run",
            )
        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
    if tokenizer.chat_template is None:
        raise ConfigError(
            f"the tokenizer of {name!r} has no chat template",
            hint="train an instruct/chat model, or add a chat_template to its tokenizer_config.json",
        )
    return model, tokenizer


# --------------------------------------------------------------------------------------------------
# the run


@dataclass
class TrainResult:
    """What a training run produced. ``model`` / ``tokenizer`` are the trained objects (in memory)."""

    method: str
    out_dir: Path
    steps: int
    losses: list[tuple[int, float]]
    train_tokens: int
    wall_s: float
    tokens_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    examples: int
    loss_curve: Path | None
    main_process: bool = True
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "out_dir": str(self.out_dir),
            "steps": self.steps,
            "examples": self.examples,
            "first_loss": self.losses[0][1] if self.losses else None,
            "final_loss": self.final_loss,
            "train_tokens": self.train_tokens,
            "wall_s": round(self.wall_s, 3),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_kind": self.peak_memory_kind,
            "loss_curve": str(self.loss_curve) if self.loss_curve else None,
        }


LogFn = Callable[[dict[str, Any]], None]


def trl_common_args(config: TrainConfig, *, bf16: bool, device: str, progress: bool) -> dict[str, Any]:
    """TrainingArguments shared by every TRL config, from our settings."""
    return {
        "output_dir": config.out,
        "seed": config.seed,
        "max_steps": config.max_steps,
        "num_train_epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "max_length": config.max_length,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup if config.warmup < 1 else int(config.warmup),
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "bf16": bf16,
        "fp16": False,
        # `gradient_checkpointing` is a deprecated alias in transformers 5; TRL mirrors the new name.
        "activation_checkpointing": config.gradient_checkpointing,
        "use_cpu": device == "cpu",
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "save_only_model": False,
        "report_to": "none",
        "disable_tqdm": not progress,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
    }


@dataclass
class PreparedRun:
    """A TRL trainer built from our config, before ``train()``: for inspection, tests and recipes
    that drive the trainer themselves. :func:`finish_run` trains it and writes the run folder."""

    config: TrainConfig
    trainer: Any
    device: str
    examples: int
    history: Any = field(repr=False)


def check_out_dir(config: TrainConfig, *, overwrite: bool) -> None:
    """Refuse to write over an adapter from an earlier run unless asked to."""
    if (Path(config.out) / "adapter_config.json").exists() and not overwrite:
        raise ConfigError(
            f"{config.out!r} already holds an adapter",
            hint="choose another --out, or pass --overwrite (overwrite=True) to replace it",
        )


def make_trl_args(args_cls: Any, config: TrainConfig, *, bf16: bool, device: str, progress: bool,
                  method_args: Mapping[str, Any], drop: Sequence[str] = ()) -> Any:
    """``args_cls`` (e.g. ``trl.DPOConfig``) from the settings every method shares plus its own
    ``method_args``; ``drop`` removes shared settings the method does not take."""
    common = trl_common_args(config, bf16=bf16, device=device, progress=progress)
    for name in drop:
        common.pop(name)
    if "activation_checkpointing" not in {f.name for f in dataclasses.fields(args_cls)}:
        # transformers < 5.2x (e.g. GPU images that pin an older stack) knows only the old name
        common["gradient_checkpointing"] = common.pop("activation_checkpointing")
    return args_cls(**common, **method_args)


def prepare_run(
    config: TrainConfig,
    *,
    trainer_cls: Any,
    args_cls: Any,
    method_args: Mapping[str, Any],
    data_kind: str,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> PreparedRun:
    """Build the data, the model with its LoRA adapter and the TRL trainer for ``config``.

    Args:
        config: the method's resolved config.
        trainer_cls / args_cls: e.g. ``trl.DPOTrainer`` / ``trl.DPOConfig``.
        method_args: the method's own TRL arguments (``beta``, ``loss_type``, ...).
        data_kind: ``"preference"`` or ``"sft"``: what :mod:`persona_lab.train.data` should build.
        dataset: training data in TRL's format; ``None`` builds it from ``config.data``.
        model / tokenizer: an in-memory base model (tests, notebooks); ``None`` loads ``config.base``.
            A ``PeftModel`` continues training its adapter; anything else gets a fresh LoRA adapter.
        on_log: called with each log record (step, loss, lr, ...) on the main process.
        progress: show transformers' progress bar.
        callbacks: extra ``transformers.TrainerCallback`` objects.
    """
    import torch

    from persona_lab.train import data as data_mod

    device = resolve_device(config)
    bf16 = resolve_bf16(config)
    if bf16 and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("bf16=true but this GPU has no bf16 support", hint="use --bf16 false (fp32) or auto")

    if dataset is None:
        if not config.data:
            raise ConfigError("no training data given", hint="pass --data <run dir | jsonl | parquet | saved dataset>")
        dataset = data_mod.load_training_data(
            config.data, kind=data_kind, prefeval_recipe=getattr(config, "prefeval_recipe", "followed")
        )
    else:
        data_mod.check_dataset(dataset, kind=data_kind, source="<in-memory dataset>")
    dataset = data_mod.trl_columns(dataset, kind=data_kind)
    if config.max_samples:
        dataset = dataset.select(range(min(config.max_samples, len(dataset))))
    if len(dataset) == 0:
        raise ConfigError(
            f"the training data {config.data or '<in-memory>'!r} holds no {data_kind} examples",
            hint="check the run: preference pairs need rounds where the user edited the draft",
        )

    if model is None:
        model, tokenizer = load_base(config, bf16=bf16)
    elif tokenizer is None:
        raise ConfigError("an in-memory model needs its tokenizer too", hint="pass tokenizer=...")
    peft_config = None if _is_peft(model) else lora_config(config)

    args = make_trl_args(args_cls, config, bf16=bf16, device=device, progress=progress, method_args=method_args)
    history, saver = _make_callbacks(config, on_log)
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[history, saver, *callbacks],
    )
    _quiet_trainer_output(trainer, progress=progress)
    return PreparedRun(config=config, trainer=trainer, device=device, examples=len(dataset), history=history)


def finish_run(run: PreparedRun) -> TrainResult:
    """Train a prepared run, save the adapter and write the run files (main process only)."""
    import torch

    config, trainer = run.config, run.trainer
    out = Path(config.out)
    if run.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start

    state = trainer.state
    tokens = int(state.num_input_tokens_seen or 0)
    peak, peak_kind = _peak_memory(run.device)
    result = TrainResult(
        method=config.method,
        out_dir=out,
        steps=int(state.global_step),
        losses=run.history.losses,
        train_tokens=tokens,
        wall_s=wall,
        tokens_per_s=tokens / wall if wall > 0 else 0.0,
        peak_memory_bytes=peak,
        peak_memory_kind=peak_kind,
        examples=run.examples,
        loss_curve=None,
        main_process=trainer.is_world_process_zero(),
        model=trainer.model,
        tokenizer=trainer.processing_class,
    )
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        write_run_files(out, config, trl_args=trainer.args, result=result, history=state.log_history)
        result.loss_curve = plot_loss_curve(result.losses, out / LOSS_CURVE_FILE, title=f"{config.method} loss")
        atomic_write_json(out / SUMMARY_FILE, result.summary())
    return result


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, PeftModel)


def _peak_memory(device: str) -> tuple[int, str]:
    """Peak CUDA memory allocated by tensors, or (on CPU) the process's peak resident set size."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(kib) * (1 if platform.system() == "Darwin" else 1024), "process_peak_rss"
    except (ImportError, OSError):  # pragma: no cover - Windows
        return 0, "unknown"


def _make_callbacks(config: TrainConfig, on_log: LogFn | None) -> tuple[Any, Any]:
    """The history and save-config callbacks (classes built here so that importing this module
    does not import transformers)."""
    from transformers import TrainerCallback

    class HistoryCallback(TrainerCallback):
        """Collects (step, loss) from the trainer's logs and forwards each record to ``on_log``."""

        def __init__(self) -> None:
            self.losses: list[tuple[int, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            if "loss" in logs:
                self.losses.append((int(state.global_step), float(logs["loss"])))
            if on_log is not None:
                on_log({"step": int(state.global_step), "max_steps": int(state.max_steps), **logs})

    class SaveConfigCallback(TrainerCallback):
        """Writes the resolved config next to every checkpoint the trainer saves."""

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    atomic_write_json(folder / CONFIG_FILE, config_record(config))

    return HistoryCallback(), SaveConfigCallback()


def _quiet_trainer_output(trainer: Any, *, progress: bool) -> None:
    """Stop transformers from printing raw log dicts (``on_log`` is the way to see them); keep its
    progress bar when ``progress``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class BarOnlyProgress(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            return None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(BarOnlyProgress())


# --------------------------------------------------------------------------------------------------
# run files


def config_record(config: TrainConfig, trl_args: Any = None) -> dict[str, Any]:
    """The resolved config plus what is needed to reproduce the run (library versions, git revision)."""
    record: dict[str, Any] = {"config": config.to_dict(), **environment_info()}
    if trl_args is not None:
        record["trl_args"] = {k: _jsonable(v) for k, v in trl_args.to_dict().items()}
    return record


def write_run_files(
    out: Path, config: TrainConfig, *, trl_args: Any, result: TrainResult, history: Sequence[dict[str, Any]]
) -> None:
    atomic_write_json(out / CONFIG_FILE, config_record(config, trl_args))
    atomic_write_text(out / HISTORY_FILE, "".join(json.dumps(_jsonable(h)) + "\n" for h in history))


def plot_loss_curve(losses: Sequence[tuple[int, float]], path: Path, *, title: str = "training loss") -> Path | None:
    """Save the loss by step as a PNG (matplotlib's Agg canvas: no display, no global backend change)."""
    if not losses:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps, values = zip(*losses)
    ax.plot(steps, values, marker="o" if len(losses) <= 50 else None, linewidth=1.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
