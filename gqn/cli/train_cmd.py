"""``gqn train``: train a scene model (``model.name``, default gqn) from a YAML config with
``key=value`` overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_UNHEALTHY = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a scene model (resumable; torchrun for several processes)",
        description="Train a scene model (model.name; gqn by default). Config keys are documented "
        "in docs/training.md; any key can be "
        "overridden as key=value, e.g. optim.max_steps=1000 model.num_steps=8.",
    )
    p.add_argument("--config", type=Path, help="YAML run config (optional with --resume)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--out", type=Path, help="run directory (overrides out_dir)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the run directory from its latest checkpoint",
    )
    p.set_defaults(handler=run)


def resolve_config(args: argparse.Namespace):
    """The RunConfig of the command line: --config (or, resuming, the run's saved config),
    then the overrides, then --out."""
    from gqn.run_config import load_run_config

    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"out_dir={args.out}")
    path = args.config
    if path is None:
        if not args.resume:
            raise ValueError("--config FILE is required (or --resume --out RUN_DIR)")
        if args.out is None:
            raise ValueError("--resume without --config needs --out RUN_DIR")
        path = args.out / "config.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {args.out} a run directory?")
    return load_run_config(path, overrides)


def run(args: argparse.Namespace) -> int:
    from gqn.train.trainer import train

    result = train(resolve_config(args), resume=args.resume)
    return EXIT_UNHEALTHY if result.status == "unhealthy" else 0
