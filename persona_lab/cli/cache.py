"""``persona-lab cache stats|prune``: look into the response cache and shrink it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from persona_lab.core.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("cache", help="response cache: stats, prune")
    p.add_argument("--cache-dir", default=None,
                   help="response cache folder (default: $PERSONA_LAB_CACHE_DIR or ~/.cache/persona-lab)")
    verbs = p.add_subparsers(dest="verb", metavar="<verb>", required=True)
    st = verbs.add_parser("stats", help="entries, size on disk, age range, entries per backend")
    st.add_argument("--json", action="store_true", help="print the figures as JSON")
    pr = verbs.add_parser("prune", help="drop answers (oldest first) and give the space back to the disk")
    pr.add_argument("--max-mb", type=float, default=None, help="keep at most this many MiB of answers")
    pr.add_argument("--older-than-days", type=float, default=None, help="drop answers older than this")
    pr.add_argument("--spec", default=None, help="drop the answers of this backend spec (exact, as in stats)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from persona_lab.models.cache import ResponseCache

    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise ConfigError(f"--cache-dir {args.cache_dir} is not a folder", hint="pass the response cache's folder")
    cache = ResponseCache(args.cache_dir)
    if args.verb == "prune":
        if args.max_mb is None and args.older_than_days is None and args.spec is None:
            raise ConfigError("prune needs a limit", hint="pass --max-mb N, --older-than-days D or --spec SPEC")
        if (args.max_mb is not None and args.max_mb < 0) or (args.older_than_days is not None and args.older_than_days < 0):
            raise ConfigError("--max-mb and --older-than-days must be >= 0")
        before = cache.stats()
        removed = cache.prune(
            max_bytes=None if args.max_mb is None else int(args.max_mb * 1024 * 1024),
            older_than_s=None if args.older_than_days is None else args.older_than_days * 86400,
            spec=args.spec,
        )
        after = cache.stats()
        print(f"dropped {removed} of {before['entries']} answers; {_mb(before['file_bytes'])} -> "
              f"{_mb(after['file_bytes'])} on disk ({cache.path})")
        return 0
    stats = cache.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{stats['path']}: {stats['entries']} answers, {_mb(stats['used_bytes'])} used, "
          f"{_mb(stats['file_bytes'])} on disk" + (f", limit {_mb(stats['max_bytes'])}" if stats["max_bytes"] else ""))
    if stats["entries"]:
        print(f"oldest {_when(stats['oldest'])}, newest {_when(stats['newest'])}")
        for spec, n in stats["by_spec"].items():
            print(f"  {n:>9}  {spec}")
    return 0


def _mb(n: int | None) -> str:
    return f"{(n or 0) / 1024 / 1024:.2f} MiB"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
