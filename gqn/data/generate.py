"""Generation driver: render procedural scenes in batches and write them as a scene store.

Scenes are pure functions of ``(seed, index)``, so a store of N scenes is determined by
(family, params, seed, N), and an interrupted run resumes at the first scene not yet in a
completed shard, producing exactly the store an uninterrupted run would.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
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
) -> Path:
    """Render ``num_scenes`` scenes of ``family`` into the store at ``out`` (resuming if present).

    Renders ``batch`` scenes per call to ``family.render_scenes``, PNG-encodes frames on
    ``encode_threads`` threads and writes one shard per ``shard_scenes`` scenes. Returns ``out``.
    Raises ``ValueError`` if ``out`` already holds a dataset with other family/params/seed.
    """
    if num_scenes < 1 or shard_scenes < 1 or batch < 1:
        raise ValueError("num_scenes, shard_scenes and batch must be positive")
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
    with ThreadPoolExecutor(encode_threads) as pool:
        while start < num_scenes:
            n = min(shard_scenes, num_scenes - start)
            scenes = []
            for lo in range(start, start + n, batch):
                idx = list(range(lo, min(lo + batch, start + n)))
                frames, poses = family.render_scenes(seed, idx, device=device)
                frames, poses = _to_numpy(frames), _to_numpy(poses).astype(np.float32)
                for f, p in zip(frames, poses, strict=True):
                    scenes.append((list(pool.map(encode_png, f)), p))
                bar.update(len(idx))
            writer.write(f"shard-{len(writer.manifest.shards):05d}.gqns", scenes, start)
            start += n
    bar.close()
    writer.finish()
    return Path(out)
