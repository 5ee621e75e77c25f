"""Provenance for every artifact persona-lab writes (run directories, checkpoints, reports):
package versions, git revision, Python and platform — inspect_ai's checklist, in one place."""

from __future__ import annotations

import functools
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

PACKAGES = ("persona-lab", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "gymnasium",
            "sentence-transformers", "faiss-cpu")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    return dict(_package_versions(packages))


@functools.lru_cache(maxsize=8)
def _package_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    # Once per process: each lookup scans sys.path and parses a METADATA file (about 1.5 ms), and
    # the code a process runs does not change version while it runs.
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The checkout's commit when persona-lab runs from a git checkout, else ``None`` (asked of git
    once per process: the code a process runs is the code it imported)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info() -> dict[str, Any]:
    """Versions, git revision, Python, platform and creation time, for ``config.json`` files."""
    return {"versions": package_versions(), "git_revision": git_revision(), "python": platform.python_version(),
            "platform": platform.platform(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
