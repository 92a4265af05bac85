"""The trainer's data: the training loader and the fixed held-out preview batch.

Wraps :mod:`gqn.data.loader` for a :class:`~gqn.run_config.DataConfig`: a stored dataset
(``data.path``) or an online procedural family (``data.family``), checked against the model's
image size before any step runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from gqn.batch import QueryBatch
from gqn.data.collate import collate_scenes
from gqn.data.dataset import SceneDataset, open_split
from gqn.data.loader import QueryLoader, make_loader
from gqn.data.samplers import StepPlan
from gqn.data.scenes import make_family
from gqn.run_config import DataConfig
from gqn.viewpoint import ViewpointEncoder, viewpoint_encoder

log = logging.getLogger(__name__)

# Salts deriving the online scene seeds from ``data.family_seed`` (see :func:`online_seed`).
TRAIN_SALT = 0x747261696E  # "train"
PREVIEW_SALT = 0x70726576  # "prev"


def online_seed(family_seed: int, salt: int) -> int:
    """The scene seed of an online stream: a 64-bit hash of ``(family_seed, salt)``.

    Online training renders with ``online_seed(family_seed, TRAIN_SALT)`` and previews with
    ``online_seed(family_seed, PREVIEW_SALT)``, so the previews are never training scenes and
    neither stream renders the scenes of ``gqn data generate --seed S`` (a small S) that a run
    may be evaluated on: a collision needs a hash equal to S, chance ~S / 2**64.
    """
    return int(np.random.SeedSequence([family_seed, salt]).generate_state(1, np.uint64)[0])


def source_encoder(source: SceneDataset | Any) -> ViewpointEncoder:
    """The viewpoint encoder of a stored dataset or an online family."""
    if isinstance(source, SceneDataset):
        return source.encoder
    return viewpoint_encoder(source.viewpoint)


def open_source(data: DataConfig, image_size: int) -> SceneDataset | Any:
    """The training split of ``data.path`` or the family ``data.family``; ValueError if neither
    is set, the images are not ``image_size`` x ``image_size``, or the scenes have too few views
    for ``data.max_context`` + ``data.num_targets``."""
    if data.path is not None:
        source = open_split(data.path, "train", data.test_fraction, data.split_seed)
        size = tuple(source.store.image_size)
        where = f"dataset {data.path}"
    elif data.family is not None:
        source = make_family(data.family, **data.family_params)
        size = (source.image_size, source.image_size)
        where = f"family {data.family!r}"
    else:
        raise ValueError(
            "no training data: set data.path (a dataset from `gqn data generate`) "
            "or data.family (e.g. shepard-metzler, rendered online)"
        )
    views = int(source.views if data.path is not None else source.views_per_scene)
    check_views(data, views, where)
    if size != (image_size, image_size):
        raise ValueError(
            f"{where} has {size[0]}x{size[1]} images but the model expects "
            f"{image_size}x{image_size} (model.image_size); regenerate the data or "
            f"set model.image_size={size[0]}"
        )
    return source


def check_views(data: DataConfig, views: int, where: str) -> None:
    """Refuse context and target counts the scenes of ``where`` (``views`` views each) cannot
    give: a step needs K context views and n = ``data.num_targets`` other views as targets, so
    ``min_context <= max_context <= views - n`` (``data.max_context`` None: all views but n)."""
    n = data.num_targets
    largest = data.min_context if data.max_context is None else data.max_context
    if largest + n > views:
        raise ValueError(
            f"data.min_context={data.min_context} / data.max_context={data.max_context} / "
            f"data.num_targets={n} need scenes of at least {largest + n} views (K context views "
            f"+ {n} target(s)), but {where} has {views} view(s) per scene; set "
            f"data.max_context <= {max(views - n, 0)} or use data with more views"
        )


def training_loader(
    data: DataConfig,
    source: SceneDataset | Any,
    seed: int,
    start_step: int,
    num_steps: int,
    rank: int,
    world_size: int,
) -> QueryLoader:
    """QueryBatches for steps ``start_step .. num_steps - 1`` of this rank."""
    online = not isinstance(source, SceneDataset)
    plan = StepPlan(
        data.batch_size,
        min_context=data.min_context,
        max_context=data.max_context,
        seed=online_seed(data.family_seed, TRAIN_SALT) if online else seed,
        start_step=start_step,
        num_steps=num_steps,
        rank=rank,
        world_size=world_size,
        pool=data.scene_pool(),
        num_targets=data.num_targets,
    )
    return make_loader(source, plan, view_split=data.view_split, num_workers=data.num_workers)


def rng_neutral(loader: QueryLoader) -> Iterator[QueryBatch]:
    """Iterate ``loader`` without touching the global torch RNG.

    Starting a DataLoader iterator draws a base seed from the global generator; doing that inside
    a forked RNG keeps the training noise stream a function of the step alone, so a resumed run
    draws exactly the noise the uninterrupted one did.
    """
    batches = iter(loader)
    with torch.random.fork_rng(devices=[]):
        first = next(batches, None)
    if first is None:
        return
    yield first
    yield from batches


def preview_batch(data: DataConfig, source: SceneDataset | Any) -> QueryBatch:
    """A fixed batch of ``data.preview_scenes`` held-out scenes: views ``0..K-1`` as context and
    views ``K..K+n-1`` as the n = ``data.num_targets`` targets, K = the largest context size
    trained on."""
    n_targets = data.num_targets
    if isinstance(source, SceneDataset):
        held_out = open_split(data.path, "test", data.test_fraction, data.split_seed)
        if len(held_out) == 0:
            log.warning("the test split of %s is empty; previewing training scenes", data.path)
            held_out = source
        views = held_out.views
        k = views - n_targets if data.max_context is None else data.max_context
        n = min(data.preview_scenes, len(held_out))
        items = [held_out[(i, list(range(k + n_targets)))] for i in range(n)]
        frames = torch.stack([f for f, _ in items])
        poses = torch.stack([p for _, p in items])
    else:
        views = int(source.views_per_scene)
        k = views - n_targets if data.max_context is None else data.max_context
        frames_np, poses_np = source.render_scenes(
            online_seed(data.family_seed, PREVIEW_SALT), list(range(data.preview_scenes))
        )
        frames = torch.as_tensor(np.asarray(frames_np))[:, : k + n_targets]
        poses = torch.as_tensor(np.asarray(poses_np))[:, : k + n_targets]
    return QueryBatch(*collate_scenes(frames, poses, n_targets, source_encoder(source)))
