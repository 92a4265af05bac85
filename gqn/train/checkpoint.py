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
load (:func:`gqn.models.loading.load_checkpoint`): a flipped bit is an error naming the file, and
:func:`load_resumable` falls back to the previous checkpoint. Checkpoints of gqn <= 0.2 have no
sidecar and load unchecked, with a warning. Loading uses ``weights_only=True``. Evaluation and
sampling need only the model entries; resuming training also needs ``optimizer``, ``schedules``
and ``rng`` (:data:`gqn.models.loading.RESUME_KEYS`). Reading checkpoints back, and rebuilding
the model they hold, is :mod:`gqn.models.loading`'s job.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gqn
from gqn.io import checksum_path, write_checked
from gqn.models.loading import (
    CHECKPOINT_DIR,
    FORMAT_VERSION,
    KIND,
    list_checkpoints,
    load_checkpoint,
)

log = logging.getLogger(__name__)


def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    """``<run_dir>/checkpoints/step_<NNNNNNNN>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


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
