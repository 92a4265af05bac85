"""Resume policy of ``gqn train``: which run directories may be written, and which config
changes a checkpoint may be resumed under (model and restored optimiser settings must match; a
different data stream only warns)."""

from __future__ import annotations

import logging
from pathlib import Path

from gqn.models.loading import find_latest, run_config_of
from gqn.run_config import RunConfig
from gqn.schedules import sigma_settings
from gqn.train.checkpoint import config_differences
from gqn.typed_config import to_dict

log = logging.getLogger(__name__)


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    """Create ``run_dir`` and check it is writable; refuse to overwrite a run unless resuming."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise PermissionError(
            f"run directory {run_dir} is not writable ({e.strerror or e}); "
            "choose another with --out or out_dir=..."
        ) from e
    if not resume and find_latest(run_dir) is not None:
        raise ValueError(
            f"{run_dir} already holds checkpoints of a run; pass --resume to "
            "continue it, or choose another --out"
        )


def restored_optim(state: dict) -> dict:
    """The schedule and Adam settings a checkpoint restores (not its stored config: those are
    what take effect on resume), under their ``optim.*`` config names; the sigma schedule's
    by :func:`gqn.schedules.sigma_settings`."""
    lr = state["schedules"]["lr"]
    group = state["optimizer"]["param_groups"][0]
    return {
        "lr_start": float(lr["start"]),
        "lr_end": float(lr["end"]),
        "lr_steps": int(lr["steps"]),
        **sigma_settings(state["schedules"]["sigma"]),
        "betas": [float(b) for b in group["betas"]],
        "eps": float(group["eps"]),
    }


def requested_optim(config: RunConfig, keys) -> dict:
    """The values of the ``optim.*`` ``keys`` as ``config`` sets them."""
    optim = to_dict(config.optim)
    return {key: optim[key] for key in keys}


def check_resumable(config: RunConfig, state: dict) -> None:
    """Refuse a checkpoint whose model or restored optimiser config differs; warn where the
    data stream differs.

    The stored model config is completed with today's defaults first, so a checkpoint written
    before a model key existed (e.g. ``aggregation``, added in 0.2.0 with default ``sum``, the
    only behaviour before) resumes when the current config uses that default."""
    stored = state["config"]
    stored_name = run_config_of(state).model.name
    if stored_name != config.model.name:
        raise ValueError(
            f"{state['path']} holds a {stored_name!r} model but the config trains "
            f"model.name={config.model.name!r}; resume with the run's own model or start a new run"
        )
    diffs = config_differences(to_dict(run_config_of(state).model), to_dict(config.model), "model.")
    if diffs:
        raise ValueError(
            f"{state['path']} was trained with a different model config: "
            + "; ".join(diffs)
            + " (checkpoint != current)"
        )
    data_keys = (
        "path",
        "family",
        "family_params",
        "family_seed",
        "batch_size",
        "min_context",
        "max_context",
    )
    data_diffs = config_differences(
        {k: stored.get("data", {}).get(k) for k in data_keys},
        {k: getattr(config.data, k) for k in data_keys},
        "data.",
    )
    restored = restored_optim(state)
    optim_diffs = config_differences(restored, requested_optim(config, restored), "optim.")
    if optim_diffs:
        raise ValueError(
            f"{state['path']} continues its own schedules and optimiser state, but the config "
            "changes them: "
            + "; ".join(optim_diffs)
            + " (checkpoint != current); drop these overrides to resume, or start a new run. "
            "optim.max_steps, optim.grad_clip, log.*, health.*, accel.* and device may change "
            "on --resume; data.* and seed changes are allowed with a warning"
        )
    if data_diffs or stored.get("seed") != config.seed:
        log.warning(
            "resuming with a different data stream (%s): the run continues, but not "
            "exactly as it would have",
            "; ".join(data_diffs) or "seed",
        )
