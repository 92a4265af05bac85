"""The seeds' analyses of a trained scene model, one ``gqn analyze NAME CHECKPOINT`` each.

:data:`ANALYSES` maps each name to its module. A module exposes ``HELP`` (one line),
``CAMERA`` (True when it needs a model of camera viewpoints), ``add_arguments(parser)``,
``run(inputs, options, out) -> record`` (writes its PNG figures into ``out``) and
``markdown(record)``; :func:`run_analysis` loads the inputs
(:func:`gqn.analysis.common.open_inputs`) and writes ``NAME.json`` + ``NAME.md`` with
:func:`gqn.experiments.report.write_report`. They work through the shared model interface
(``represent``, ``generate``), so every registered model (GQN, multi-scale, CGQN) is served.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from gqn.experiments.report import write_report

ANALYSES: dict[str, str] = {
    "views": "gqn.analysis.views",
    "tsne": "gqn.analysis.tsne",
    "algebra": "gqn.analysis.algebra",
    "interpolate": "gqn.analysis.interpolate",
    "generality": "gqn.analysis.generality",
}


def analysis_module(name: str) -> ModuleType:
    """The module of analysis ``name`` (ValueError naming the valid ones)."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; valid analyses: {sorted(ANALYSES)}")
    return importlib.import_module(ANALYSES[name])


def default_options(name: str, **overrides: Any) -> argparse.Namespace:
    """The analysis' options as its command line defaults them, with ``overrides``."""
    parser = argparse.ArgumentParser()
    analysis_module(name).add_arguments(parser)
    options = parser.parse_args([])
    for key, value in overrides.items():
        if hasattr(options, key):
            setattr(options, key, value)
    return options


def run_analysis(
    name: str,
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None,
    out: str | os.PathLike,
    options: argparse.Namespace,
) -> dict[str, Any]:
    """Run analysis ``name`` on a checkpoint (file or run directory) and the held-out split of
    ``data`` (default: the run's store); writes ``out/NAME.json``, ``out/NAME.md`` and the
    figures, and returns the record. The global RNG is left as it was."""
    from gqn.analysis.common import open_inputs

    module = analysis_module(name)
    inputs = open_inputs(name, checkpoint, data, camera=module.CAMERA)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        record = module.run(inputs, options, out)
    record.update(
        analysis=name,
        checkpoint=str(checkpoint),
        data=str(inputs.data),
        model=inputs.config.model.name,
        options={k: v for k, v in vars(options).items() if k != "handler"},
        wall_s=time.perf_counter() - start,
    )
    write_report(out, name, record, module.markdown(record))
    return record
