"""The layer rules of ARCHITECTURE.md, enforced: lower layers never import higher ones (not even
lazily inside a function), and no two modules import each other in a cycle at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "persona_lab"

# part -> parts it must never import
FORBIDDEN = {
    "core": {"models", "simulators", "envs", "agents", "eval", "train", "cli", "testing"},
    "models": {"simulators", "envs", "agents", "eval", "train", "cli", "testing"},
    "simulators": {"envs", "agents", "eval", "train", "cli", "testing"},
    "envs": {"agents", "eval", "train", "cli", "testing"},
    "agents": {"envs", "eval", "train", "cli", "testing"},
    "eval": {"train", "cli", "testing"},
    "train": {"envs", "eval", "cli", "testing"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    pkg = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("persona_lab")}


FILES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layer_rules(path: Path) -> None:
    part = path.relative_to(ROOT).parts[0]
    forbidden = FORBIDDEN.get(part.removesuffix(".py"), set())
    bad = sorted(m for m in _imports(path, top_level_only=False)
                 if len(m.split(".")) > 1 and m.split(".")[1] in forbidden)
    assert not bad, f"{path.relative_to(ROOT)} ({part}) imports {bad}"


# What an agent may read of a world (ARCHITECTURE.md): the catalog and each world's public
# vocabulary module, never a simulated user's logic. ``prefeval.context`` is PrefEval's
# observation codec and ``fspo`` holds FSPO's episode format (its users are plain catalog sets).
AGENT_VISIBLE_WORLD_MODULES = ("catalog", "prefeval.context", "fspo")


@pytest.mark.parametrize("path", sorted((ROOT / "agents").rglob("*.py")), ids=lambda p: p.name)
def test_agents_see_only_public_world_vocabulary(path: Path) -> None:
    prefix = "persona_lab.simulators."
    worlds = {m[len(prefix):] for m in _imports(path, top_level_only=False) if m.startswith(prefix)}
    modules = {w for w in worlds if (ROOT / "simulators" / (w.replace(".", "/") + ".py")).exists()
               or (ROOT / "simulators" / w.replace(".", "/")).is_dir()}
    hidden = sorted(m for m in modules if not m.endswith("_vocab") and m not in AGENT_VISIBLE_WORLD_MODULES
                    and not m.startswith("catalog"))
    assert not hidden, f"agents/{path.name} imports a world's user logic: {hidden} (use its *_vocab module)"


def test_no_import_cycles() -> None:
    modules = {_module_name(p): p for p in FILES}
    graph = {name: {m for m in _imports(p, top_level_only=True) if m in modules and m != name}
             for name, p in modules.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
