"""Training checkpoints: one atomic file per save, ``latest`` found by scanning.

A checkpoint is ``<run_dir>/checkpoints/step_<NNNNNNNN>.pt``, a ``torch.save`` of a dict:

- ``format_version`` (int, :data:`FORMAT_VERSION`), ``gqn_version`` (str), ``kind`` ("gqn-train")
- ``model_class`` (str), ``config`` (the RunConfig as a plain dict), ``model`` (state_dict)
- ``optimizer`` (state_dict), ``schedules`` ({"sigma": ..., "lr": ...} LinearAnneal states)
- ``step`` (completed steps), ``data_position`` (the next step the loader yields)
- ``rng`` ({"python", "numpy", "torch", "cuda"} generator states)

Files are written with :func:`gqn.io.atomic_write` (a temp file in the same directory, flushed
and fsynced, renamed over the final name, the directory fsynced), so a crash or a full disk never
leaves a partial checkpoint under a final name and never touches the previous one. Each file has
a sha256 sidecar ``step_<NNNNNNNN>.pt.sha256`` (:func:`gqn.io.write_checked`), checked on every
load: a flipped bit is an error naming the file, and :func:`load_resumable` falls back to the
previous checkpoint. Checkpoints of gqn <= 0.2 have no sidecar and load unchecked, with a
warning. Loading uses ``weights_only=True``. Evaluation and sampling need only the model
entries; resuming training also needs ``optimizer``, ``schedules`` and ``rng``
(:data:`RESUME_KEYS`).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gqn
from gqn.config import ConfigError, from_dict
from gqn.io import checksum_path, read_checked, write_checked
from gqn.models import GQN
from gqn.train.config import RunConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
KIND = "gqn-train"
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
MODEL_KEYS = ("config", "model", "step", "model_class")
RESUME_KEYS = ("optimizer", "schedules", "rng")


def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    """``<run_dir>/checkpoints/step_<NNNNNNNN>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


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


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (if present) CUDA generator states, weights_only-loadable."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA only when the device count matches)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | os.PathLike[str], state: dict[str, Any], keep_last: int | None = None
) -> Path:
    """Write ``state`` to ``path`` atomically; then keep only the newest ``keep_last``
    checkpoints of its directory (all if None). Adds ``format_version``, ``kind`` and
    ``gqn_version``. On any error the temp file is removed and earlier files are untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"cannot create checkpoint directory {path.parent}: {e}") from e
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "gqn_version": gqn.__version__,
        **state,
    }
    try:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_checked(path, buffer.getvalue())
    except OSError as e:
        full = " (disk full)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise OSError(
            e.errno,
            f"cannot write checkpoint {path}{full}: {e.strerror or e}; earlier checkpoints in "
            f"{path.parent} are intact: free space, then continue with --resume",
        ) from e
    if keep_last is not None:
        for old in list_checkpoints(path.parent)[:-keep_last]:
            if old != path:
                old.unlink(missing_ok=True)
                checksum_path(old).unlink(missing_ok=True)
    log.debug("saved checkpoint %s", path)
    return path


def _resolve(path_or_run_dir: str | os.PathLike[str]) -> Path:
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
    """The checkpoint dict of a file, or of the latest checkpoint of a run directory.

    Raises FileNotFoundError (nothing there) or ValueError (corrupt/truncated, not a gqn
    checkpoint, written by a newer format, or, with ``resume``, lacking the optimizer, schedule
    and RNG states that continuing training needs) with a message naming the file.
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


def load_resumable(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The newest checkpoint of ``run_dir`` that loads with its resume states (on CPU); when a
    newer one is corrupt, a warning names it and the previous one is used."""
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint (checkpoints/step_*.pt) in {run_dir}")
    errors = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path, map_location="cpu", resume=True)
        except ValueError as e:
            errors.append(str(e))
            log.warning("cannot resume from it: %s; trying the previous checkpoint", e)
            continue
        if errors:
            log.warning("resuming from %s, the newest checkpoint that is sound", path)
        return state
    raise ValueError(f"{errors[0]}; no earlier checkpoint in {run_dir} is sound either")


def run_config_of(state: dict[str, Any]) -> RunConfig:
    """The RunConfig stored in a checkpoint dict."""
    try:
        return from_dict(RunConfig, state["config"])
    except ConfigError as e:
        raise ValueError(f"{state.get('path', 'checkpoint')}: stored config is invalid: {e}") from e


def config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts, as 'key: a != b'."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} != {vb!r}")
    return out


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
    path_or_run_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[GQN, RunConfig]:
    """The trained model (in eval mode, on ``device``) and its RunConfig. The checkpoint is
    read into CPU memory, so its optimiser state never occupies the device."""
    state = load_checkpoint(path_or_run_dir, map_location="cpu")
    config = run_config_of(state)
    model = GQN(config.model)
    load_model_state(model, state)
    return model.to(device).eval(), config
