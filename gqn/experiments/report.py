"""An experiment's outputs: ``NAME.json`` (the numbers, the command's arguments and the machine)
and ``NAME.md`` (a readable summary with the figures), both written atomically."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gqn.io import atomic_write


def arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The command's arguments as JSON values (paths as strings; the handler dropped)."""
    return {
        k: (v if isinstance(v, (int, float, bool, list, type(None))) else str(v))
        for k, v in vars(args).items()
        if k != "handler"
    }


def write_report(out: str | Path, name: str, record: dict[str, Any], markdown: str) -> Path:
    """Write ``out/NAME.json`` (``record`` and ``machine``) and ``out/NAME.md``; returns the
    JSON's path."""
    from gqn.viz.demo_report import machine_info  # imports the metrics: not at CLI start-up

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    with atomic_write(path) as f:
        f.write((json.dumps({**record, "machine": machine_info()}, indent=2) + "\n").encode())
    with atomic_write(out / f"{name}.md") as f:
        f.write(markdown.encode())
    return path
