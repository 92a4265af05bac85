"""The ``gqn`` command: a thin layer that composes library pieces.

Each sub-command group lives in its own module exposing ``register(subparsers)``; this module only
builds the parser and dispatches. Handlers return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Sub-command modules, each with ``register(subparsers)``.
COMMAND_MODULES = (
    "gqn.cli.data_cmd",
    "gqn.cli.train_cmd",
    "gqn.cli.eval_cmd",
    "gqn.cli.demo_cmd",
    "gqn.cli.experiment_cmd",
    "gqn.cli.export_cmd",
    "gqn.cli.view_cmd",
    "gqn.cli.analyze_cmd",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``gqn`` parser. Modules with a ``COMMANDS`` tuple (``gqn experiment``, ``gqn analyze``)
    import their many sub-modules only when ``command`` is theirs or None (every command in
    full); otherwise they register a one-line entry, so that other commands start fast."""
    parser = argparse.ArgumentParser(
        prog="gqn", description="Train, sample and evaluate Generative Query Networks."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "COMMANDS"):
            module.register(sub, full=command is None or command in module.COMMANDS)
        else:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    parser = build_parser(words[0] if words else "")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        # User-facing errors (bad config, bad file, bad shape, a full disk) carry a message that
        # names the thing and what to do; a traceback would hide it (-v shows it).
        if args.verbose:
            raise
        print(f"gqn {args.command}: error: {e}", file=sys.stderr)
        return 2
