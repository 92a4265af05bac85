"""``gqn demo``: the command-line layer over :mod:`gqn.demo` (stages, reuse, sizes)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from gqn import demo
from gqn.demo import DEFAULT_CONFIG, FULL, TINY, DemoSettings, StageFailed, run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate data, train, evaluate, sample and write OUT/report.md (resumable)",
        description=demo.__doc__.split("\n\n")[0],
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder")
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="training config (default: configs/demo.yaml of this source checkout)",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides")
    sizes = {
        "scenes": "scenes to generate",
        "views": "views per scene",
        "eval_scenes": "held-out scenes to evaluate",
        "samples": "prior samples per query (N)",
        "frames": "orbit frames",
        "compare": "scenes in the comparison grid",
    }
    for key, what in sizes.items():
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=int,
            default=None,
            help=f"{what} (default {FULL[key]}; {TINY[key]} with --tiny)",
        )
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke run of every stage")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    names = [f.name for f in dataclasses.fields(DemoSettings)]
    settings = DemoSettings(**{name: getattr(args, name) for name in names})
    try:
        report = run_demo(settings)
    except StageFailed as e:
        print(f"gqn demo: {e}; rerun `gqn demo` to continue", file=sys.stderr)
        return 3
    print(f"wrote {report}")
    return 0
