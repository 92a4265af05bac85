"""Loading trained models: checkpoint files read back, the model rebuilt by its registered name.

Evaluation, sampling and the demo load models from here; training (:mod:`gqn.train.checkpoint`)
writes the files and reads them back through :func:`load_checkpoint` to resume. The layout of a
checkpoint dict is documented in :mod:`gqn.train.checkpoint`. :func:`load_model` builds the
class that ``config.model.name`` names (:func:`gqn.models.registry.build_model`; checkpoints
from before the registry have no name and load as ``gqn``).
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

import gqn
from gqn.io import read_checked
from gqn.models.base import SceneModel
from gqn.models.pretrained import PREFIX, pretrained_path
from gqn.models.registry import build_model
from gqn.run_config import RunConfig
from gqn.typed_config import ConfigError, from_dict

FORMAT_VERSION = 1
KIND = "gqn-train"
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
MODEL_KEYS = ("config", "model", "step", "model_class")
RESUME_KEYS = ("optimizer", "schedules", "rng")

log = logging.getLogger(__name__)


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files of ``run_dir`` (or of a ``checkpoints`` dir itself), oldest first."""
    root = Path(run_dir)
    folder = root if root.name == CHECKPOINT_DIR else root / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint with the highest step in ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _resolve(path_or_run_dir: str | os.PathLike[str]) -> Path:
    if str(path_or_run_dir).startswith(PREFIX):
        return pretrained_path(str(path_or_run_dir))
    p = Path(path_or_run_dir)
    if p.is_dir():
        latest = find_latest(p)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint (checkpoints/step_*.pt) in {p}")
        return latest
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    return p


def load_checkpoint(
    path_or_run_dir: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    resume: bool = False,
) -> dict[str, Any]:
    """The checkpoint dict of a file, of the latest checkpoint of a run directory, or of the
    shipped weights ``pretrained:NAME`` (:mod:`gqn.models.pretrained`).

    Every read checks the file's sha256 sidecar (:func:`gqn.io.read_checked`); a file without
    one (gqn <= 0.2) loads unchecked, with a warning. Raises FileNotFoundError (nothing there) or
    ValueError (checksum mismatch, corrupt/truncated, not a gqn checkpoint, written by a newer
    format, or, with ``resume``, lacking the optimizer, schedule and RNG states that continuing
    training needs) with a message naming the file.
    """
    path = _resolve(path_or_run_dir)
    data, checked = read_checked(path)
    if not checked:
        log.warning("%s has no checksum file (written by gqn <= 0.2?): loading it unchecked", path)
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(
            f"{path} is corrupt or truncated and cannot be read "
            f"({type(e).__name__}: {str(e)[:200]})"
        ) from e
    if not isinstance(state, dict) or state.get("kind") != KIND:
        raise ValueError(f"{path} is not a gqn training checkpoint")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {version!r}, newer than this gqn "
            f"({gqn.__version__}) reads (<= {FORMAT_VERSION}); upgrade gqn"
        )
    missing = [k for k in MODEL_KEYS if k not in state]
    if missing:
        raise ValueError(f"{path} lacks {missing}: not a complete gqn checkpoint")
    lacking = [k for k in RESUME_KEYS if k not in state] if resume else []
    if lacking:
        raise ValueError(
            f"checkpoint {path} has no {'/'.join(lacking)} state (written by gqn eval tests or "
            "an export?): it cannot be resumed; start a new run or use it for eval/sample only"
        )
    state["path"] = str(path)
    return state


def run_config_of(state: dict[str, Any]) -> RunConfig:
    """The RunConfig stored in a checkpoint dict."""
    try:
        return from_dict(RunConfig, state["config"])
    except ConfigError as e:
        raise ValueError(f"{state.get('path', 'checkpoint')}: stored config is invalid: {e}") from e


def load_model_state(model: torch.nn.Module, state: dict[str, Any]) -> None:
    """Load ``state["model"]`` into ``model``, refusing with the differing keys and shapes."""
    where = state.get("path", "checkpoint")
    if state.get("model_class") != type(model).__name__:
        raise ValueError(
            f"{where} holds a {state.get('model_class')!r} model, not a {type(model).__name__}"
        )
    own = model.state_dict()
    theirs = state["model"]
    problems = [f"missing {k}" for k in own if k not in theirs]
    problems += [f"unexpected {k}" for k in theirs if k not in own]
    problems += [
        f"{k}: shape {tuple(theirs[k].shape)} != {tuple(v.shape)}"
        for k, v in own.items()
        if k in theirs and theirs[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        raise ValueError(f"{where} does not fit this model: {shown}")
    model.load_state_dict(theirs)


def load_model(
    path_or_run_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    models: Collection[str] | None = None,
) -> tuple[SceneModel, RunConfig]:
    """The trained model (in eval mode, on ``device``) and its RunConfig. The checkpoint is
    read into CPU memory, so its optimiser state never occupies the device. ``models``: the
    model names a command accepts (any when None); another name is a ValueError naming both."""
    state = load_checkpoint(path_or_run_dir, map_location="cpu")
    config = run_config_of(state)
    if models is not None and config.model.name not in models:
        raise ValueError(
            f"{state['path']} holds a {config.model.name!r} model; this command needs one of "
            f"{sorted(models)}"
        )
    model = build_model(config.model.name, config.model)
    load_model_state(model, state)
    return model.to(device).eval(), config
