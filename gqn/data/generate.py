"""Generation driver: render procedural scenes in batches and write them as a scene store.

Scenes are pure functions of ``(seed, index)``, so a store of N scenes is determined by
(family, params, seed, N), and an interrupted run resumes at the first scene not yet in a
completed shard, producing exactly the store an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gqn.data.scenes.base import SceneFamily
from gqn.data.shard import encode_png
from gqn.data.store_writer import StoreWriter

log = logging.getLogger(__name__)

DEFAULT_SHARD_SCENES = 1000


def procedural_source(family: SceneFamily, seed: int) -> dict[str, Any]:
    """The manifest ``source`` entry identifying a generated dataset."""
    return {"kind": "procedural", "family": family.name, "params": family.params(), "seed": seed}


def _to_numpy(x) -> np.ndarray:
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


def _ignore(n: int) -> None:
    """No progress to count (rendering counted it already, or nobody listens)."""


def _render_scenes(
    family: SceneFamily,
    seed: int,
    first: int,
    count: int,
    batch: int,
    device: Any,
    encode: Callable[[Callable, Iterable], Iterable],
    done: Callable[[int], Any] = _ignore,
) -> list[tuple[list[bytes], np.ndarray]]:
    """Scenes ``first ... first + count - 1`` of ``family``, rendered ``batch`` per call on
    ``device``: per scene its PNG-encoded frames (``encode`` maps the encoder over them) and its
    (views, 5) poses; ``done(n)`` after each call."""
    scenes = []
    for lo in range(first, first + count, batch):
        idx = list(range(lo, min(lo + batch, first + count)))
        frames, poses = family.render_scenes(seed, idx, device=device)
        frames, poses = _to_numpy(frames), _to_numpy(poses).astype(np.float32)
        for f, p in zip(frames, poses, strict=True):
            scenes.append((list(encode(encode_png, f)), p))
        done(len(idx))
    return scenes


def _render_shard_job(job: tuple) -> list[tuple[list[bytes], np.ndarray]]:
    """A worker process' share: one shard's scenes, rendered and encoded on one thread."""
    family, seed, first, count, batch = job
    torch.set_num_threads(1)  # the workers are the parallelism
    return _render_scenes(family, seed, first, count, batch, None, map)


def generate_dataset(
    family: SceneFamily,
    out: str | os.PathLike,
    num_scenes: int,
    seed: int = 0,
    shard_scenes: int = DEFAULT_SHARD_SCENES,
    batch: int = 32,
    device: Any = None,
    encode_threads: int = 2,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Render ``num_scenes`` scenes of ``family`` into the store at ``out`` (resuming if present).

    Renders ``batch`` scenes per call to ``family.render_scenes``, PNG-encodes frames on
    ``encode_threads`` threads and writes one shard per ``shard_scenes`` scenes. With
    ``workers`` > 1 (CPU rendering only), that many processes render and encode whole shards in
    parallel and this process writes them in order: the store is byte-identical to one written
    with a single worker, since a scene is a pure function of ``(seed, index)``. Returns
    ``out``. Raises ``ValueError`` if ``out`` already holds a dataset with other
    family/params/seed, or for ``workers`` > 1 with a render ``device``.
    """
    if num_scenes < 1 or shard_scenes < 1 or batch < 1 or workers < 1:
        raise ValueError("num_scenes, shard_scenes, batch and workers must be positive")
    if workers > 1 and device is not None and str(device) != "cpu":
        raise ValueError(f"workers > 1 render on the CPU; got device {device!r}: use workers=1")
    size = int(family.image_size)
    writer = StoreWriter(
        out,
        procedural_source(family, seed),
        int(family.views_per_scene),
        (size, size),
        "png",
        target_scenes=num_scenes,
        viewpoint=family.viewpoint,
    )
    start = writer.num_scenes
    if start:
        log.info("%s: resuming after %d completed scenes", out, start)
    bar = tqdm(
        total=num_scenes,
        initial=min(start, num_scenes),
        unit="scene",
        desc=f"generate {family.name}",
        disable=not progress,
    )
    shards = [
        (lo, min(shard_scenes, num_scenes - lo)) for lo in range(start, num_scenes, shard_scenes)
    ]
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # forkserver, not fork: a fork from a threaded caller can inherit a held lock
            pool = stack.enter_context(multiprocessing.get_context("forkserver").Pool(workers))
            jobs = [(family, seed, lo, n, batch) for lo, n in shards]
            rendered = pool.imap(_render_shard_job, jobs)  # in shard order
            written = bar.update
        else:
            threads = stack.enter_context(ThreadPoolExecutor(encode_threads))
            rendered = (
                _render_scenes(family, seed, lo, n, batch, device, threads.map, bar.update)
                for lo, n in shards
            )
            written = _ignore
        for (lo, n), scenes in zip(shards, rendered, strict=True):
            writer.write(f"shard-{len(writer.manifest.shards):05d}.gqns", scenes, lo)
            written(n)
    bar.close()
    writer.finish()
    return Path(out)
