"""The typed configuration of a training run (``gqn train``).

A :class:`RunConfig` nests the model, data, optimisation, logging, health and acceleration
configs. It loads from YAML (:func:`load_run_config`), takes ``key=value`` overrides, and the
resolved config is written to ``<run_dir>/config.yaml``. Defaults are the paper's (Eslami et al.
2018; thesis §5.2.1) wherever the paper gives one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gqn.accel import AccelConfig
from gqn.data.samplers import ScenePool
from gqn.models import GQNConfig
from gqn.models.registry import ModelConfig
from gqn.schedules import PiecewiseConstant, Schedule, pixel_sigma_schedule
from gqn.typed_config import ConfigError, apply_overrides, load_yaml


@dataclass
class DataConfig:
    """Where training scenes come from and how they are batched.

    Exactly one of ``path`` (a scene store written by ``gqn data generate`` / ``convert``) or
    ``family`` (a procedural family rendered on the fly, e.g. ``shepard-metzler``, with
    ``family_params``) must be set. Held-out preview scenes come from the store's test split
    (``test_fraction``, ``split_seed``) or, online, from the family with a seed derived from
    ``family_seed`` apart from the training stream's (see :func:`gqn.train.data.online_seed`).
    ``pool_scenes`` / ``pool_steps`` train the first steps on only the first few training
    scenes (:class:`gqn.data.samplers.ScenePool`; not in the paper; off by default).
    ``num_targets``: target views per scene (n of :class:`gqn.batch.QueryBatch`; 1 for the GQN),
    never context views; K + n must fit in a scene's views. ``view_split``: ``"random"`` views,
    or ``"hidden-face"`` (stored MNIST dice): the context misses one side of the die and every
    target shows it (:mod:`gqn.data.dice_sampler`).
    """

    path: str | None = None
    family: str | None = None
    family_params: Any = field(default_factory=dict)
    family_seed: int = 0
    batch_size: int = 36
    min_context: int = 0
    max_context: int | None = None
    num_targets: int = 1
    num_workers: int = 2
    test_fraction: float = 0.1
    split_seed: int = 0
    preview_scenes: int = 8
    pool_scenes: int | None = None
    pool_steps: int = 0
    view_split: str = "random"

    def __post_init__(self) -> None:
        if self.path is not None and self.family is not None:
            raise ValueError(
                "set either data.path (a stored dataset) or data.family (online), not both"
            )
        if not isinstance(self.family_params, dict):
            raise ValueError(f"data.family_params must be a mapping, got {self.family_params!r}")
        if self.batch_size < 1 or self.num_workers < 0 or self.preview_scenes < 1:
            raise ValueError(
                "need data.batch_size >= 1, data.num_workers >= 0, data.preview_scenes >= 1"
            )
        if self.num_targets < 1:
            raise ValueError(f"data.num_targets must be >= 1, got {self.num_targets}")
        if self.min_context < 0 or (
            self.max_context is not None and self.max_context < self.min_context
        ):
            raise ValueError(
                "need 0 <= data.min_context <= data.max_context, got "
                f"{self.min_context} and {self.max_context}"
            )
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must lie in [0, 1), got {self.test_fraction}")
        if self.family_seed < 0 or self.split_seed < 0:
            raise ValueError("data.family_seed and data.split_seed must be >= 0")
        off = self.pool_scenes is None
        if (
            off != (self.pool_steps == 0)
            or self.pool_steps < 0
            or (not off and self.pool_scenes < 1)
        ):
            raise ValueError(
                "a scene pool needs both data.pool_scenes >= 1 and data.pool_steps >= 1 "
                f"(or neither), got {self.pool_scenes} and {self.pool_steps}"
            )

    def scene_pool(self) -> ScenePool | None:
        """The pool of scenes for the first steps, or None when off."""
        if self.pool_scenes is None:
            return None
        return ScenePool(self.pool_scenes, self.pool_steps)


@dataclass
class OptimConfig:
    """Adam with the paper's linear schedules (lr 5e-4 -> 5e-5 over 1.6M steps; pixel sigma
    2.0 -> 0.7 over 200k steps). ``grad_clip`` (max global L2 norm) is off when None.

    ``sigma_schedule``: ``"linear"`` (``sigma_start`` -> ``sigma_end`` over ``sigma_steps``) or
    ``"piecewise"`` (``sigma_values[i]`` for ``sigma_durations[i]`` steps, then the last value;
    CGQN's MNIST-cube schedule, :class:`gqn.schedules.PiecewiseConstant`). ``sigma_scale``
    multiplies the sigma schedule's step counts (the paper's numbers at a CPU run's length)."""

    lr_start: float = 5e-4
    lr_end: float = 5e-5
    lr_steps: int = 1_600_000
    sigma_start: float = 2.0
    sigma_end: float = 0.7
    sigma_steps: int = 200_000
    sigma_schedule: Literal["linear", "piecewise"] = "linear"
    sigma_values: list[float] = field(default_factory=list)
    sigma_durations: list[int] = field(default_factory=list)
    sigma_scale: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = None
    max_steps: int = 2_000_000

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.lr_steps < 1 or self.sigma_steps < 1:
            raise ValueError("optim.max_steps, lr_steps and sigma_steps must be >= 1")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"optim.grad_clip must be positive or null, got {self.grad_clip}")
        for name in ("lr_start", "sigma_start", "sigma_end", "eps"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"optim.{name} must be > 0, got {getattr(self, name)}")
        if not self.lr_end >= 0:
            raise ValueError(
                f"optim.lr_end must be >= 0 (a negative rate ascends the loss), got {self.lr_end}"
            )
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must both lie in [0, 1), got {list(self.betas)}")
        try:
            self.pixel_sigma()
        except ValueError as e:
            raise ValueError(f"optim.sigma_*: {e}") from e

    def pixel_sigma(self) -> Schedule:
        """A fresh pixel-sigma schedule of these settings."""
        if self.sigma_schedule == "piecewise":
            return PiecewiseConstant(
                self.sigma_values, self.sigma_durations, scale=self.sigma_scale
            )
        return pixel_sigma_schedule(
            self.sigma_start, self.sigma_end, self.sigma_steps, self.sigma_scale
        )


@dataclass
class LogConfig:
    """How often to log scalars (``every``), image grids (``image_every``) and checkpoint
    (``checkpoint_every``), all in steps; ``keep_last`` checkpoints are kept."""

    every: int = 100
    image_every: int = 1000
    checkpoint_every: int = 1000
    keep_last: int = 3
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("every", "image_every", "checkpoint_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"log.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class HealthConfig:
    """Numerical health checks (see :mod:`gqn.train.health`).

    - ``max_bad_steps``: consecutive non-finite steps (skipped) before the run stops.
    - ``kl_collapse_nats``: a KL below this (nats/image) counts as collapsed.
    - ``kl_growth_factor``: a KL above this multiple of its running minimum counts as growing.
    - ``window``: consecutive log points a KL condition must hold before a warning.
    - ``blank_std``: prior samples whose mean per-image pixel std is below this are "blank".
    - ``warmup_steps``: no KL or blank-sample warnings before this step (an untrained model is
      expected to look collapsed).
    """

    max_bad_steps: int = 5
    kl_collapse_nats: float = 0.01
    kl_growth_factor: float = 100.0
    window: int = 10
    blank_std: float = 0.02
    warmup_steps: int = 1000

    def __post_init__(self) -> None:
        if self.max_bad_steps < 1 or self.window < 1:
            raise ValueError("health.max_bad_steps and health.window must be >= 1")
        for name in ("kl_collapse_nats", "blank_std", "warmup_steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"health.{name} must be >= 0, got {getattr(self, name)}")
        if not self.kl_growth_factor > 1:
            raise ValueError(f"health.kl_growth_factor must be > 1, got {self.kl_growth_factor}")


@dataclass
class RunConfig:
    """Everything a training run needs; ``out_dir`` is the run directory. ``model`` is the config
    of the model named by ``model.name`` (:mod:`gqn.models.registry`; default ``gqn``).
    ``threads``: torch CPU threads (``auto``: see :func:`gqn.train.pace.choose_threads`)."""

    model: ModelConfig = field(default_factory=GQNConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    accel: AccelConfig = field(default_factory=AccelConfig)
    seed: int = 0
    out_dir: str = "runs/default"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.threads != "auto" and self.threads < 1:
            raise ValueError(f"threads must be 'auto' or >= 1, got {self.threads}")


def load_run_config(
    path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()
) -> RunConfig:
    """The RunConfig of YAML file ``path`` (defaults if None) with ``key=value`` overrides."""
    cfg = RunConfig() if path is None else load_yaml(RunConfig, path)
    try:
        cfg = apply_overrides(cfg, overrides)
    except ConfigError as e:
        raise ConfigError(f"override: {e}") from e
    if cfg.log.keep_last < 2:  # checked here, not in LogConfig: stored configs of gqn <= 0.2 load
        raise ConfigError(
            f"log.keep_last must be >= 2 for training (--resume falls back to the previous "
            f"checkpoint when the latest is corrupt), got {cfg.log.keep_last}"
        )
    return cfg
