"""Samplers: which scenes and views each training step uses, a pure function of
``(seed, step, rank)`` (see :mod:`gqn.data.loader`); shared by stored and online data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler


def check_context(
    views: int, min_context: int, max_context: int | None, num_targets: int = 1
) -> tuple[int, int]:
    """The context range ``(min_context, max_context)`` (None: all views the targets leave);
    ValueError unless ``K + num_targets`` views fit in a scene of ``views`` views."""
    if num_targets < 1 or num_targets >= views:
        raise ValueError(
            f"data.num_targets must be in [1, {views - 1}] for scenes of {views} views, "
            f"got {num_targets}"
        )
    top = views - num_targets
    hi = top if max_context is None else max_context
    if not 0 <= min_context <= hi <= top:
        raise ValueError(
            f"context range [{min_context}, {hi}] must lie within [0, {top}] "
            f"for scenes of {views} views and {num_targets} target(s)"
        )
    return min_context, hi


def draw_views(
    seed: int,
    step: int,
    rank: int,
    scenes: int,
    views: int,
    min_context: int,
    max_context: int,
    num_targets: int = 1,
) -> np.ndarray:
    """View indices ``(scenes, K+n)`` for one step: K context views then the n targets.

    K is drawn from ``(seed, step)`` alone, so every rank of a step uses the same K; n only
    decides how many of each permutation are kept, so n = 1 draws what it always did.
    """
    k = int(np.random.default_rng([seed, step, 0]).integers(min_context, max_context + 1))
    rng = np.random.default_rng([seed, step, 1, rank])
    perms = rng.permuted(np.tile(np.arange(views), (scenes, 1)), axis=1)
    return perms[:, : k + num_targets]


@dataclass(frozen=True)
class ScenePool:
    """Steps ``0 .. steps - 1`` train on only the first ``scenes`` scenes of the stream.

    Not in the paper. On a few scenes the generator learns to render from the query pose
    (a scene it can tell apart pays for it); afterwards it meets every scene and keeps more of
    that than a run that saw every scene from the start (docs/experiments/2026-11-21-demo.md).
    """

    scenes: int
    steps: int

    def __post_init__(self) -> None:
        if self.scenes < 1 or self.steps < 1:
            raise ValueError(
                f"a scene pool needs scenes >= 1 and steps >= 1, got {self.scenes} and {self.steps}"
            )

    def active(self, step: int) -> bool:
        """Whether ``step`` draws from the pool."""
        return step < self.steps


@dataclass(frozen=True)
class StepPlan:
    """The training steps one rank takes: ``batch_size`` scenes per step on each of
    ``world_size`` ranks (this is ``rank``), each scene with K context views (K uniform in
    ``min_context .. max_context``, None: all views the targets leave) and ``num_targets``
    target views drawn from ``(seed, step, rank)`` (:func:`draw_views`); steps
    ``start_step .. num_steps - 1`` (endless if ``num_steps`` is None); an optional
    :class:`ScenePool` for the first steps."""

    batch_size: int
    min_context: int = 0
    max_context: int | None = None
    seed: int = 0
    start_step: int = 0
    num_steps: int | None = None
    rank: int = 0
    world_size: int = 1
    pool: ScenePool | None = None
    num_targets: int = 1


class StepStream:
    """What the on-disk sampler and the online dataset share: the steps of a :class:`StepPlan`
    over scenes of ``views`` views (``max_context`` resolved and checked against them)."""

    def __init__(self, views: int, plan: StepPlan):
        if not 0 <= plan.rank < plan.world_size:
            raise ValueError(f"rank {plan.rank} outside world_size {plan.world_size}")
        if plan.pool is not None and plan.pool.scenes < plan.batch_size * plan.world_size:
            raise ValueError(
                f"a scene pool of {plan.pool.scenes} scenes cannot fill one step of "
                f"{plan.batch_size} x {plan.world_size} rank(s); raise data.pool_scenes"
            )
        self.views, self.batch_size = views, plan.batch_size
        self.min_context, self.max_context = check_context(
            views, plan.min_context, plan.max_context, plan.num_targets
        )
        self.num_targets = plan.num_targets
        self.seed, self.start_step, self.num_steps = plan.seed, plan.start_step, plan.num_steps
        self.rank, self.world_size, self.pool = plan.rank, plan.world_size, plan.pool

    def step_views(self, step: int, scenes: int) -> np.ndarray:
        """View indices ``(scenes, K+n)`` of ``step`` on this rank (K context views, n targets)."""
        return draw_views(
            self.seed,
            step,
            self.rank,
            scenes,
            self.views,
            self.min_context,
            self.max_context,
            self.num_targets,
        )

    def steps(self, offset: int = 0, stride: int = 1) -> Iterator[int]:
        """Steps ``start_step + offset, + stride, ...`` up to ``num_steps`` (or forever)."""
        step = self.start_step + offset
        while self.num_steps is None or step < self.num_steps:
            yield step
            step += stride

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError(f"an endless {type(self).__name__} (num_steps=None) has no length")
        return max(0, self.num_steps - self.start_step)


class QueryBatchSampler(StepStream, Sampler):
    """Yields, per step, ``batch_size`` items ``(dataset index, view indices (K+n,))``.

    Scenes are taken in a permutation seeded by ``(seed, epoch)``; an epoch is
    ``num_scenes // (batch_size * world_size)`` steps and each rank takes its own slice of the
    step's global batch. While a ``pool`` is active the same holds for dataset indices
    ``0 .. pool.scenes - 1`` (permutations seeded by ``(seed, epoch, pool.scenes)``). Iterates
    steps ``start_step .. num_steps - 1`` (forever if ``num_steps`` is None).
    """

    def __init__(self, num_scenes: int, views: int, plan: StepPlan):
        super().__init__(views, plan)
        batch_size, world_size, pool = plan.batch_size, plan.world_size, plan.pool
        if num_scenes < batch_size * world_size:
            raise ValueError(
                f"{num_scenes} scenes cannot fill one step of {batch_size} x {world_size} rank(s)"
            )
        if pool is not None and pool.scenes > num_scenes:
            raise ValueError(
                f"a scene pool of {pool.scenes} scenes is larger than the {num_scenes} "
                "training scenes; lower data.pool_scenes"
            )
        self.num_scenes = num_scenes
        self._key: tuple[bool, int] | None = None
        self._perm = np.empty(0, dtype=np.int64)

    def step_items(self, step: int) -> list[tuple[int, tuple[int, ...]]]:
        in_pool = self.pool is not None and self.pool.active(step)
        n = self.pool.scenes if in_pool else self.num_scenes
        epoch, within = divmod(step, n // (self.batch_size * self.world_size))
        if (in_pool, epoch) != self._key:
            self._key = (in_pool, epoch)
            key = [self.seed, epoch, 2] + ([n] if in_pool else [])
            self._perm = np.random.default_rng(key).permutation(n)
        lo = (within * self.world_size + self.rank) * self.batch_size
        scenes = self._perm[lo : lo + self.batch_size]
        views = self.step_views(step, len(scenes))
        return [(int(s), tuple(int(x) for x in v)) for s, v in zip(scenes, views, strict=True)]

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, ...]]]]:
        for step in self.steps():
            yield self.step_items(step)
