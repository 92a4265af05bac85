"""Datasets: a store's scenes under a fixed seeded train/test split (:class:`SceneDataset`,
:func:`open_split`) and freshly rendered procedural scenes (:class:`OnlineSceneDataset`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from gqn.data.collate import BatchTensors, collate_scenes
from gqn.data.manifest import MANIFEST, check_readable_dir
from gqn.data.samplers import StepPlan, StepStream
from gqn.data.store import SceneStore
from gqn.viewpoint import ViewpointEncoder, viewpoint_encoder

SPLITS = ("train", "test", "all")


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


class OnlineSceneDataset(StepStream, IterableDataset):
    """Endless query batches of freshly rendered procedural scenes (no disk).

    Step s on rank r renders scenes ``(s * world_size + r) * batch_size + [0, batch_size)`` of
    ``family`` with ``seed``, so no scene repeats across steps, ranks or DataLoader workers;
    worker w of W produces steps ``start_step + w, + W, ...`` (the DataLoader interleaves them
    back in order). While a ``pool`` is active the scene numbers are taken modulo
    ``pool.scenes``, so those steps cycle through scenes ``0 .. pool.scenes - 1``. Yields
    QueryBatch tensors (see :func:`gqn.data.collate.collate_scenes`).
    """

    def __init__(self, family: Any, plan: StepPlan, device: Any = None):
        super().__init__(int(family.views_per_scene), plan)
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
