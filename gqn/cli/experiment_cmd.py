"""``gqn experiment NAME``: the seeds' experiments (the registry in :mod:`gqn.experiments`)."""

from __future__ import annotations

import argparse
import importlib

from gqn.experiments import EXPERIMENTS

COMMANDS = ("experiment",)


def register(sub: argparse._SubParsersAction, full: bool = True) -> None:
    """``full``: every experiment's own arguments (imports each module); else the entry alone."""
    parser = sub.add_parser(
        "experiment",
        help="run one of the seeds' experiments: JSON + Markdown + figures (resumable)",
    )
    if not full:
        return
    names = parser.add_subparsers(dest="experiment", required=True, metavar="NAME")
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        command = names.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
