"""``gqn analyze NAME CHECKPOINT`` (the seeds' analyses, :data:`gqn.analysis.ANALYSES`) and
``gqn reproduce [CLAIM...] --checkpoint RUN`` (the seeds' claims decided on a checkpoint)."""

from __future__ import annotations

import argparse

COMMANDS = ("analyze", "reproduce")


def _common(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument("--data", help="scene store (default: the run's data.path)")
    parser.add_argument("--out", default=out, help=f"output directory (default {out})")


def register(sub: argparse._SubParsersAction, full: bool = True) -> None:
    """``full``: every analysis' own arguments (imports each module); else the entries alone."""
    parser = sub.add_parser(
        "analyze", help="one of the seeds' analyses of a checkpoint: figures + JSON + Markdown"
    )
    claims = sub.add_parser(
        "reproduce", help="decide the seeds' claims on a checkpoint (one line per claim)"
    )
    if not full:
        return
    from gqn.analysis import ANALYSES, analysis_module

    names = parser.add_subparsers(dest="analysis", required=True, metavar="NAME")
    for name in ANALYSES:
        module = analysis_module(name)
        command = names.add_parser(name, help=module.HELP, description=module.HELP)
        command.add_argument("checkpoint", help="checkpoint file or run directory")
        _common(command, f"analysis/{name}")
        module.add_arguments(command)
        command.set_defaults(handler=_analyze)
    claims.add_argument("claims", nargs="*", metavar="CLAIM", help="claims (default: all)")
    claims.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    _common(claims, "reproduce")
    claims.add_argument("--scenes", type=int, help="held-out scenes for the analyses")
    claims.add_argument(
        "--results",
        action="append",
        metavar="DIR",
        help="where the experiments' JSON is (repeatable; searched after --out; default: the "
        "experiments' default --out folders)",
    )
    claims.set_defaults(handler=_reproduce)


def _analyze(args: argparse.Namespace) -> int:
    from gqn.analysis import run_analysis

    options = argparse.Namespace(
        **{
            k: v
            for k, v in vars(args).items()
            if k not in ("analysis", "checkpoint", "data", "out", "handler", "command", "verbose")
        }
    )
    run_analysis(args.analysis, args.checkpoint, args.data, args.out, options)
    print(f"wrote {args.out}/{args.analysis}.json and {args.analysis}.md")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from gqn.analysis.reproduce import EXPERIMENT_RESULTS, line, reproduce

    results = args.results or EXPERIMENT_RESULTS
    for row in reproduce(args.claims, args.checkpoint, args.data, args.out, args.scenes, results):
        print(line(row))
    return 0
