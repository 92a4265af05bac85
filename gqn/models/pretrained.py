"""Shipped weights: small model-only checkpoints in the package, loaded by name.

``pretrained:NAME`` works wherever a checkpoint path does (``gqn sample pretrained:sm-32 ...``,
``gqn eval``, :func:`gqn.models.loading.load_model`), and :func:`load_pretrained` is the library
call. A shipped file is a checkpoint reduced to what loading needs (config, weights, step,
model class) with its floating-point weights stored in fp16 to halve the download; it is
written with a sha256 sidecar like every checkpoint and verified on every read. Loading casts
the weights back to the model's fp32 parameters. How each file was made (command, steps,
data, eval table) is in docs/pretrained.md; ``make pretrained`` remakes the shipped one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from gqn.models.base import SceneModel
from gqn.run_config import RunConfig

PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
KEEP = ("config", "model", "step", "model_class")


def available() -> list[str]:
    """Names of the weights shipped in this installation."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def pretrained_path(spec: str) -> Path:
    """The file of ``pretrained:NAME`` (or of ``NAME``); a ValueError lists the names there are."""
    name = spec.removeprefix(PREFIX)
    path = PRETRAINED_DIR / f"{name}.pt"
    if not name or "/" in name or not path.exists():
        shipped = ", ".join(available()) or "none in this installation (make pretrained)"
        raise ValueError(f"no pretrained weights {name!r}; shipped: {shipped}")
    return path


def export_weights(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], fp16: bool = True
) -> Path:
    """Write the model-only copy of ``checkpoint`` (file or run directory) to ``out``: no
    optimiser, schedule or RNG state (it cannot be resumed), weights in fp16 if ``fp16``."""
    from gqn.models.loading import load_checkpoint
    from gqn.train.checkpoint import save_checkpoint

    state = load_checkpoint(checkpoint)
    kept: dict[str, Any] = {k: state[k] for k in KEEP}
    if fp16:
        kept["model"] = {
            k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()
        }
    kept["exported_from"] = {"path": state["path"], "step": state["step"], "fp16": fp16}
    return save_checkpoint(out, kept)


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[SceneModel, RunConfig]:
    """The shipped model ``name`` (e.g. ``"sm-32"``), in eval mode on ``device``, and its
    RunConfig (the training config it was made with)."""
    from gqn.models.loading import load_model

    return load_model(pretrained_path(name), device=device)
