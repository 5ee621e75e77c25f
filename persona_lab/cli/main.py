"""``persona-lab``: one command, with subcommands each defined in its own module of this package.

A subcommand module defines ``add_parser(subparsers) -> argparse.ArgumentParser`` and sets the
parser's ``func`` default to a handler ``(args) -> int``. User errors (:class:`PersonaLabError`)
print a short message and exit 2 (3 for a backend that kept failing), without a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from persona_lab import __version__
from persona_lab.core.errors import PersonaLabError

# Set (unless --verbose, or already set by the user) before any model library is imported.
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}

# Subcommand modules, in the order --help lists them. Add yours here.
COMMAND_MODULES = [
    "persona_lab.cli.ls",
    "persona_lab.cli.run",
    "persona_lab.cli.check",
    "persona_lab.cli.bench",
    "persona_lab.cli.prefeval",
    "persona_lab.cli.train",
    "persona_lab.cli.fspo",
    "persona_lab.cli.chat",
    "persona_lab.cli.cache",
    "persona_lab.cli.calibrate",
]


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for unknown subcommands and choices."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice:" in message:
            bad = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'\"")
            choices = []
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction) or action.choices:
                    choices.extend(list(action.choices or []))
            close = difflib.get_close_matches(bad, [str(c) for c in choices], n=1, cutoff=0.5)
            if close:
                message = f"{message}; did you mean {close[0]!r}?"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _named_command(argv: Sequence[str]) -> str | None:
    """The known subcommand ``argv`` names (its first token that is not an option), else ``None``
    (no command, ``--help``/``--version`` first, or an unknown name that needs every command)."""
    for token in argv:
        if token in ("-h", "--help", "--version"):
            return None
        if not token.startswith("-"):
            return token if f"persona_lab.cli.{token}" in COMMAND_MODULES else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``only``, just that subcommand's module is imported (a scripted ``run``
    then never imports what ``bench``, ``train`` or ``prefeval`` need: a third of its CPU time)."""
    parser = _Parser(
        prog="persona-lab",
        description="persona-lab: simulated users, personalization agents and evaluations.",
    )
    parser.add_argument("--version", action="version", version=f"persona-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at INFO level and show third-party progress bars (weights loading, GGUF conversion)")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    for name in COMMAND_MODULES:
        if only is None or name == f"persona_lab.cli.{only}":
            importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_named_command(argv))
    args = parser.parse_args(argv)
    args.argv = argv  # the command line, for messages such as how to --resume
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # third-party progress bars (weights loading, GGUF conversion) hide our own output
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except PersonaLabError as exc:
        print(f"persona-lab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except UnicodeDecodeError as exc:  # a user file that is not text; the loaders name the file where they can
        print(f"persona-lab {args.command}: error: an input file is not UTF-8 text ({exc.reason} at byte {exc.start})"
              "\n  hint: save it as UTF-8", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path flag (--out, --cache-dir, --data...) that names a file where a folder is needed, or the reverse
        print(f"persona-lab {args.command}: error: cannot use {exc.filename}: {exc.strerror}"
              "\n  hint: check the paths given to --out, --cache-dir and the data flags", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
