"""Training data: query batches from a scene store or from scenes rendered on the fly.

Every step is a pure function of ``(seed, step, rank)``:

- the number of context views K is drawn once per step (shared by all ranks), uniform in
  ``[min_context, max_context]``;
- each scene gets a random permutation of its V views: the first K are context, the next n
  (``num_targets``, 1 for the GQN) are the targets, so a target is never a context view;
- stored scenes are visited in a seeded permutation per epoch, split across ranks;
- an optional :class:`gqn.data.samplers.ScenePool` restricts the first steps to a small pool
  of scenes.

So a run resumes exactly by planning from ``start_step`` (:class:`StepPlan`).
:func:`make_loader` is the entry point.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from gqn.batch import QueryBatch
from gqn.data.collate import CollateItems, to_query_batch
from gqn.data.dataset import OnlineSceneDataset, SceneDataset, open_split
from gqn.data.dice_sampler import HiddenFaceBatchSampler, hidden_face_dataset
from gqn.data.samplers import QueryBatchSampler, StepPlan
from gqn.data.scenes.dice_views import SPLITS
from gqn.data.workers import shutdown_workers, unwrap_worker_error


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
    plan: StepPlan,
    *,
    split: str = "train",
    test_fraction: float = 0.1,
    split_seed: int = 0,
    view_split: str = "random",
    num_workers: int = 2,
    pin_memory: bool = False,
    persistent_workers: bool = True,
    prefetch_factor: int = 4,
) -> QueryLoader:
    """A loader of :class:`QueryBatch` es (one per step of ``plan``, a :class:`StepPlan`) from a
    store or a scene family.

    ``data`` is a store directory (split as in :func:`open_split`), a :class:`SceneDataset`, or
    a scene family object with ``render_scenes`` (online mode: fresh scenes every step).
    Steps run from ``plan.start_step`` to ``plan.num_steps`` (endless if None); to resume a
    run, plan from the step to continue from. Each scene gives K context views and
    ``plan.num_targets`` targets: random views, or with ``view_split="hidden-face"`` (stored
    MNIST dice only) a context that misses one side of the die and targets that all show it
    (:mod:`gqn.data.dice_sampler`).
    """
    if view_split not in SPLITS:
        raise ValueError(f"unknown view split {view_split!r}; valid: {list(SPLITS)}")
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = dict(
            persistent_workers=persistent_workers,
            prefetch_factor=prefetch_factor,
            worker_init_fn=ignore_stop_signals,
        )
    if hasattr(data, "render_scenes"):
        if view_split != "random":
            raise ValueError(
                f"view split {view_split!r} needs a stored MNIST-dice dataset (data.path), "
                "not scenes rendered online"
            )
        ds = OnlineSceneDataset(data, plan)
        loader = DataLoader(
            ds, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **extra
        )
    else:
        ds = (
            data
            if isinstance(data, SceneDataset)
            else open_split(data, split, test_fraction, split_seed)
        )
        if view_split == "hidden-face":
            top = ds.views - plan.num_targets if plan.max_context is None else plan.max_context
            ds, faces = hidden_face_dataset(ds, top, plan.num_targets)
            sampler = HiddenFaceBatchSampler(faces, ds.views, plan)
        else:
            sampler = QueryBatchSampler(len(ds), ds.views, plan)
        loader = DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=CollateItems(plan.num_targets, ds.encoder),
            num_workers=num_workers,
            pin_memory=pin_memory,
            **extra,
        )
    return QueryLoader(loader, plan.start_step, plan.num_steps)
