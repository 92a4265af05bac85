"""``gqn experiment NAME``: the seeds' experiments (the registry in :mod:`gqn.experiments`)."""

from __future__ import annotations

import argparse
import importlib

from gqn.experiments import EXPERIMENTS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "experiment",
        help="run one of the seeds' experiments: JSON + Markdown + figures (resumable)",
    )
    names = parser.add_subparsers(dest="experiment", required=True, metavar="NAME")
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        command = names.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
