"""Training data: query batches from a scene store or from scenes rendered on the fly.

Every step is a pure function of ``(seed, step, rank)``:

- the number of context views K is drawn once per step (shared by all ranks), uniform in
  ``[min_context, max_context]``;
- each scene gets a random permutation of its V views: the first K are context, the next n
  (``num_targets``, 1 for the GQN) are the targets, so a target is never a context view;
- stored scenes are visited in a seeded permutation per epoch, split across ranks;
- an optional :class:`ScenePool` restricts the first steps to a small pool of scenes.

So a run resumes exactly by passing ``start_step``. :func:`make_loader` is the entry point.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info

from gqn.batch import QueryBatch
from gqn.data.manifest import MANIFEST, check_readable_dir
from gqn.data.store import SceneStore
from gqn.data.workers import shutdown_workers, unwrap_worker_error
from gqn.viewpoint import CAMERA, ViewpointEncoder, viewpoint_encoder

SPLITS = ("train", "test", "all")
# (frames uint8 (b, K+n, H, W, 3), poses float32 (b, K+n, 5)) -> the six tensors of a QueryBatch
BatchTensors = tuple[torch.Tensor, ...]


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


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(..., H, W, 3)`` -> float32 images ``(..., 3, H, W)`` in [0, 1].

    A new tensor (channels-first view strides, one copy); ``frames`` is never modified.
    """
    return frames.movedim(-1, -3).to(torch.float32, copy=True).div_(255.0)


def collate_scenes(
    frames: torch.Tensor,
    poses: torch.Tensor,
    num_targets: int = 1,
    encoder: ViewpointEncoder = CAMERA,
) -> BatchTensors:
    """uint8 frames ``(b, K+n, H, W, 3)`` + raw poses ``(b, K+n, 5)`` -> the tensors of a
    QueryBatch: the first K views are context, the last n = ``num_targets`` the targets.

    Returns ``(context_images (b, K, 3, H, W) float in [0, 1], context_viewpoints (b, K, d),
    context_mask (b, K) bool, target_images (b, n, 3, H, W), target_viewpoints (b, n, d),
    target_mask (b, n) bool)``; ``encoder`` turns the raw poses into d-dim viewpoints.
    """
    images = frames_to_images(frames)
    vp = encoder.encode(poses[..., : encoder.raw_dim].float())
    b, k = images.shape[0], images.shape[1] - num_targets
    return (
        images[:, :k].contiguous(),
        vp[:, :k].contiguous(),
        torch.ones(b, k, dtype=torch.bool),
        images[:, k:].contiguous(),
        vp[:, k:].contiguous(),
        torch.ones(b, num_targets, dtype=torch.bool),
    )


def to_query_batch(t: BatchTensors) -> QueryBatch:
    return QueryBatch(*t)


def split_scenes(num_scenes: int, split: str, test_fraction: float, split_seed: int) -> np.ndarray:
    """Scene indices of ``split`` ("train", "test" or "all") under a fixed seeded split.

    Scene i is a test scene iff a hash of ``(split_seed, i)`` falls below ``test_fraction``, so
    the split of a scene never changes when the store grows.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    idx = np.arange(num_scenes, dtype=np.uint64)
    if split == "all":
        return idx.astype(np.int64)
    with np.errstate(over="ignore"):  # splitmix64
        z = idx + np.uint64(0x9E3779B97F4A7C15) * np.uint64(split_seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    is_test = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < test_fraction
    return np.flatnonzero(is_test if split == "test" else ~is_test).astype(np.int64)


class SceneDataset(Dataset):
    """Map-style dataset over the scenes ``indices`` of a store.

    ``dataset[(i, views)]`` -> ``(frames uint8 (n, H, W, 3), poses float32 (n, 5))`` of the
    listed views of the i-th selected scene (decoding only those); ``dataset[i]`` gives all V.
    """

    def __init__(self, store: SceneStore | str | os.PathLike, indices: Sequence[int] | None = None):
        self.store = store if isinstance(store, SceneStore) else SceneStore(store)
        self.indices = np.arange(len(self.store)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def views(self) -> int:
        return self.store.views

    @property
    def encoder(self) -> ViewpointEncoder:
        """The viewpoint encoder of the store's kind of viewpoint."""
        return viewpoint_encoder(self.store.viewpoint)

    def __getitem__(
        self, key: int | tuple[int, Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i, views = (key, None) if isinstance(key, int | np.integer) else key
        frames, poses = self.store.read(int(self.indices[i]), views)
        return torch.from_numpy(frames), torch.from_numpy(poses)


@dataclass(frozen=True)
class ScenePool:
    """Steps ``0 .. steps - 1`` train on only the first ``scenes`` scenes of the stream.

    Not in the paper. On a few scenes the generator learns to render from the query pose
    (a scene it can tell apart pays for it); afterwards it meets every scene and keeps more of
    that than a run that saw every scene from the start (docs/evaluation.md, section 6).
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


class StepStream:
    """What the on-disk sampler and the online dataset share: a stream of training steps
    ``start_step .. num_steps - 1`` (endless if ``num_steps`` is None) of ``batch_size`` scenes
    per rank, each step with its K context and ``num_targets`` target views drawn by
    :func:`draw_views` from ``(seed, step, rank)``, and an optional :class:`ScenePool` for the
    first steps."""

    def __init__(
        self,
        views: int,
        batch_size: int,
        min_context: int,
        max_context: int | None,
        seed: int,
        start_step: int,
        num_steps: int | None,
        rank: int,
        world_size: int,
        pool: ScenePool | None,
        num_targets: int,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        if pool is not None and pool.scenes < batch_size * world_size:
            raise ValueError(
                f"a scene pool of {pool.scenes} scenes cannot fill one step of "
                f"{batch_size} x {world_size} rank(s); raise data.pool_scenes"
            )
        self.views, self.batch_size = views, batch_size
        self.min_context, self.max_context = check_context(
            views, min_context, max_context, num_targets
        )
        self.num_targets = num_targets
        self.seed, self.start_step, self.num_steps = seed, start_step, num_steps
        self.rank, self.world_size, self.pool = rank, world_size, pool

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

    def __init__(
        self,
        num_scenes: int,
        views: int,
        batch_size: int,
        min_context: int = 0,
        max_context: int | None = None,
        seed: int = 0,
        start_step: int = 0,
        num_steps: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        pool: ScenePool | None = None,
        num_targets: int = 1,
    ):
        super().__init__(
            views,
            batch_size,
            min_context,
            max_context,
            seed,
            start_step,
            num_steps,
            rank,
            world_size,
            pool,
            num_targets,
        )
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


@dataclass(frozen=True)
class CollateItems:
    """``collate_fn`` of stored scenes: ``SceneDataset`` items of equal K + n -> QueryBatch
    tensors (:func:`collate_scenes`)."""

    num_targets: int = 1
    encoder: ViewpointEncoder = CAMERA

    def __call__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> BatchTensors:
        frames = torch.stack([f for f, _ in items])
        poses = torch.stack([p for _, p in items])
        return collate_scenes(frames, poses, self.num_targets, self.encoder)


class OnlineSceneDataset(StepStream, IterableDataset):
    """Endless query batches of freshly rendered procedural scenes (no disk).

    Step s on rank r renders scenes ``(s * world_size + r) * batch_size + [0, batch_size)`` of
    ``family`` with ``seed``, so no scene repeats across steps, ranks or DataLoader workers;
    worker w of W produces steps ``start_step + w, + W, ...`` (the DataLoader interleaves them
    back in order). While a ``pool`` is active the scene numbers are taken modulo
    ``pool.scenes``, so those steps cycle through scenes ``0 .. pool.scenes - 1``. Yields
    QueryBatch tensors (see :func:`collate_scenes`).
    """

    def __init__(
        self,
        family: Any,
        batch_size: int,
        min_context: int = 0,
        max_context: int | None = None,
        seed: int = 0,
        start_step: int = 0,
        num_steps: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        pool: ScenePool | None = None,
        num_targets: int = 1,
        device: Any = None,
    ):
        super().__init__(
            int(family.views_per_scene),
            batch_size,
            min_context,
            max_context,
            seed,
            start_step,
            num_steps,
            rank,
            world_size,
            pool,
            num_targets,
        )
        self.family, self.device = family, device
        self.encoder = viewpoint_encoder(family.viewpoint)

    def render_step(self, step: int) -> BatchTensors:
        base = (step * self.world_size + self.rank) * self.batch_size
        scenes = np.arange(base, base + self.batch_size)
        if self.pool is not None and self.pool.active(step):
            scenes %= self.pool.scenes
        frames, poses = self.family.render_scenes(self.seed, scenes.tolist(), device=self.device)
        frames, poses = torch.as_tensor(frames).cpu(), torch.as_tensor(poses).cpu()
        views = torch.from_numpy(self.step_views(step, self.batch_size))
        rows = torch.arange(self.batch_size)[:, None]
        return collate_scenes(
            frames[rows, views], poses[rows, views], self.num_targets, self.encoder
        )

    def __iter__(self) -> Iterator[BatchTensors]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in self.steps(offset=wid, stride=nw):
            yield self.render_step(step)


class QueryLoader:
    """Iterates a DataLoader of QueryBatch tensors and yields :class:`gqn.batch.QueryBatch`."""

    def __init__(self, loader: DataLoader, start_step: int, num_steps: int | None):
        self.loader, self.start_step, self.num_steps = loader, start_step, num_steps
        self._batches: Any = None

    def __iter__(self) -> Iterator[QueryBatch]:
        self._batches = iter(self.loader)
        try:
            for t in self._batches:
                yield to_query_batch(t)
        except Exception as e:
            original = unwrap_worker_error(e)
            if original is None:
                raise
            raise original from e

    def close(self) -> None:
        """Stop the worker processes now (see :mod:`gqn.data.workers`); call it when leaving
        the iteration early, above all on an error."""
        shutdown_workers(self._batches)

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless loader (num_steps=None) has no length")
        return max(0, self.num_steps - self.start_step)


def sub_stores(path: str | os.PathLike) -> dict[str, Path]:
    """``{"train": path/train, "test": path/test}``, for those of the two that hold a store
    (the layout of converted DeepMind data); empty for a single store."""
    path = Path(path)
    found = {}
    for split in ("train", "test"):
        if (path / split).is_dir():
            check_readable_dir(path / split)
            if (path / split / MANIFEST).exists():
                found[split] = path / split
    return found


def open_split(
    path: str | os.PathLike, split: str = "train", test_fraction: float = 0.1, split_seed: int = 0
) -> SceneDataset:
    """The ``split`` of a store: ``path/<split>`` if it exists (converted DeepMind data),
    else a seeded split of the store at ``path`` (see :func:`split_scenes`)."""
    subs = sub_stores(path)
    if split in subs:
        return SceneDataset(subs[split])
    store = SceneStore(path)
    return SceneDataset(store, split_scenes(len(store), split, test_fraction, split_seed))


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn`` of the training loaders: workers ignore SIGINT and SIGTERM.

    Ctrl-C in a terminal, a scheduler ending a job (Slurm) or ``pkill -f`` signals every process
    of the run, the workers included. A worker killed by it makes the main process fail with
    "DataLoader worker ... killed by signal" before it can finish its step and write the exit
    checkpoint. The main process handles the signal; the workers exit when the loader shuts down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    data: str | os.PathLike | SceneDataset | Any,
    batch_size: int,
    *,
    split: str = "train",
    test_fraction: float = 0.1,
    split_seed: int = 0,
    min_context: int = 0,
    max_context: int | None = None,
    seed: int = 0,
    start_step: int = 0,
    num_steps: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    pool: ScenePool | None = None,
    num_targets: int = 1,
    num_workers: int = 2,
    pin_memory: bool = False,
    persistent_workers: bool = True,
    prefetch_factor: int = 4,
) -> QueryLoader:
    """A loader of :class:`QueryBatch` es (one per step) from a store or a scene family.

    ``data`` is a store directory (split as in :func:`open_split`), a :class:`SceneDataset`, or
    a scene family object with ``render_scenes`` (online mode: fresh scenes every step).
    Steps run from ``start_step`` to ``num_steps`` (endless if None); to resume a run, pass the
    step to continue from. ``pool`` (a :class:`ScenePool`) trains the first steps on a few
    scenes. Each scene gives K context views and ``num_targets`` targets.
    """
    common = dict(
        min_context=min_context,
        max_context=max_context,
        seed=seed,
        start_step=start_step,
        num_steps=num_steps,
        rank=rank,
        world_size=world_size,
        pool=pool,
        num_targets=num_targets,
    )
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = dict(
            persistent_workers=persistent_workers,
            prefetch_factor=prefetch_factor,
            worker_init_fn=ignore_stop_signals,
        )
    if hasattr(data, "render_scenes"):
        ds = OnlineSceneDataset(data, batch_size, **common)
        loader = DataLoader(
            ds, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **extra
        )
    else:
        ds = (
            data
            if isinstance(data, SceneDataset)
            else open_split(data, split, test_fraction, split_seed)
        )
        sampler = QueryBatchSampler(len(ds), ds.views, batch_size, **common)
        loader = DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=CollateItems(num_targets, ds.encoder),
            num_workers=num_workers,
            pin_memory=pin_memory,
            **extra,
        )
    return QueryLoader(loader, start_step, num_steps)
