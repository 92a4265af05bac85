"""The writer of a scene store: :class:`StoreWriter` creates or resumes a store and appends
shards atomically (the format is described in :mod:`gqn.data.shard`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gqn.data.manifest import (
    MANIFEST,
    DataFormatError,
    Manifest,
    ShardInfo,
    read_manifest,
    write_manifest,
)
from gqn.data.shard import SHARD_SUFFIX, check_scene, encode_shard, image_size_of, write_shard
from gqn.data.store import SceneStore
from gqn.io import is_temp_name

log = logging.getLogger(__name__)


class StoreWriter:
    """Create or resume a store; append shards atomically.

    On open, an existing manifest must describe the same ``source``/views/size/codec (else
    ``ValueError``: refuse to mix datasets); leftover temp files of :func:`gqn.io.atomic_write`
    and shard files that the manifest does not list (written but not yet recorded when
    interrupted) are deleted, and the listed shards are checked (size + sha256) so a resumed
    write builds on sound shards only. The writer writes the manifest before anything else, so a
    directory without one holds nothing of the writer's but temp files: if it holds anything
    else, it is refused (``ValueError``) and left as it is.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        source: dict[str, Any],
        views: int,
        image_size: tuple[int, int],
        codec: str,
        target_scenes: int | None = None,
        verify_existing: bool = True,
        viewpoint: str = "camera",
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        fresh = Manifest(
            source=source,
            views=views,
            image_size=tuple(image_size),
            codec=codec,
            target_scenes=target_scenes,
            viewpoint=viewpoint,
        )
        if (self.root / MANIFEST).exists():
            old = read_manifest(self.root)
            mine = (json.loads(json.dumps(source)), views, tuple(image_size), codec)
            theirs = (old.source, old.views, tuple(old.image_size), old.codec)
            if mine != theirs:
                raise ValueError(
                    f"{self.root} already holds a different dataset ({_describe(old)}); "
                    f"refusing to mix it with {_describe(fresh)}. Choose another output directory."
                )
            self.manifest = old
            self.manifest.target_scenes = target_scenes
            self.manifest.complete = False
        else:
            self.manifest = fresh
            _refuse_foreign_files(self.root)
        listed = {s.file for s in self.manifest.shards}
        for p in self.root.iterdir():
            if is_temp_name(p.name) or (p.suffix == SHARD_SUFFIX and p.name not in listed):
                log.info("discarding incomplete %s", p)
                p.unlink()
        if verify_existing and self.manifest.shards:
            self._verify_existing()
        write_manifest(self.root, self.manifest)

    def _verify_existing(self) -> None:
        store = SceneStore(self.root, verify=True)
        errors = store.verify_all()
        if errors:
            raise DataFormatError(
                "cannot resume: " + "; ".join(errors) + ". Delete the bad shard(s) and the "
                "matching manifest entries, or start in a new directory."
            )

    @property
    def num_scenes(self) -> int:
        return self.manifest.num_scenes

    def add_shard(self, info: ShardInfo, progress: dict[str, Any] | None = None) -> None:
        """Record a shard already written with :func:`write_shard`; update the manifest."""
        self.manifest.shards.append(info)
        if progress:
            self.manifest.progress.update(progress)
        write_manifest(self.root, self.manifest)

    def write(
        self,
        name: str,
        scenes: Sequence[tuple[Sequence[bytes], np.ndarray]],
        first_scene: int,
        source: str | None = None,
    ) -> ShardInfo:
        """Validate, encode and atomically write one shard, then record it."""
        m = self.manifest
        checked = []
        for i, (frames, poses) in enumerate(scenes):
            where = f"{self.root / name}: scene {first_scene + i}"
            checked.append((frames, check_scene(frames, poses, m.views, where)))
            for v, blob in enumerate(frames):
                h, w = image_size_of(blob)
                if (h, w) != tuple(m.image_size):
                    raise DataFormatError(
                        f"{where} view {v}: frame is {h}x{w}, "
                        f"dataset is {m.image_size[0]}x{m.image_size[1]}"
                    )
        info = write_shard(
            self.root / name, encode_shard(checked, m.views, tuple(m.image_size), m.codec)
        )
        info.source = source
        self.add_shard(info)
        return info

    def commit(self) -> None:
        """Atomically rewrite the manifest after changing ``self.manifest`` directly."""
        write_manifest(self.root, self.manifest)

    def finish(self) -> None:
        self.manifest.complete = True
        write_manifest(self.root, self.manifest)


def _refuse_foreign_files(root: Path) -> None:
    """Refuse ``root`` (no manifest) if it holds anything a writer did not make."""
    foreign = sorted(p.name for p in root.iterdir() if not is_temp_name(p.name))
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        shown = ", ".join(foreign[:3]) + more
        raise ValueError(
            f"{root} is not empty ({shown}) and holds no gqn dataset ({MANIFEST}); refusing to "
            "write into it so nothing there is lost. Choose a new or empty output directory."
        )


def _describe(m: Manifest) -> str:
    src = m.source
    what = ", ".join(f"{k}={v}" for k, v in src.items())
    return f"{what}; {m.views} views of {m.image_size[0]}x{m.image_size[1]} {m.codec}"
