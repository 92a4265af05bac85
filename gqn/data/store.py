"""The reader of a scene store: :class:`SceneStore`, random access to decoded scenes, safe in
forked DataLoader workers (the format is described in :mod:`gqn.data.shard`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gqn.data.manifest import DataFormatError, read_manifest
from gqn.data.shard import OpenShard, decode_frame
from gqn.viewpoint import POSE_DIM


class SceneStore:
    """Random-access reader of a scene store directory.

    Safe to use from several processes and DataLoader workers: shard files are opened lazily in
    the process that reads them (handles inherited through fork are dropped). ``verify=True``
    checks each shard's sha256 once, on its first open in a process.
    """

    def __init__(self, root: str | os.PathLike, verify: bool = True):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.verify = verify
        counts = [s.scenes for s in self.manifest.shards]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._open: dict[int, OpenShard] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def views(self) -> int:
        return self.manifest.views

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.manifest.image_size)

    @property
    def viewpoint(self) -> str:
        """The kind of viewpoint stored per view ("camera" unless the manifest says otherwise)."""
        return self.manifest.viewpoint

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open"] = {}
        return state

    def _shard(self, scene: int) -> tuple[OpenShard, int]:
        if not 0 <= scene < len(self):
            raise IndexError(f"{self.root}: scene index {scene} out of range 0..{len(self) - 1}")
        if os.getpid() != self._pid:  # forked: never use the parent's descriptors
            self._open, self._pid = {}, os.getpid()
        k = int(np.searchsorted(self._starts, scene, side="right")) - 1
        if k not in self._open:
            info = self.manifest.shards[k]
            self._open[k] = OpenShard(
                self.root / info.file, info, self.manifest, int(self._starts[k]), self.verify
            )
        return self._open[k], scene - int(self._starts[k])

    def read_raw(self, scene: int) -> tuple[list[bytes], np.ndarray]:
        """Scene ``scene``'s V compressed frames (bytes) and poses float32 ``(V, 5)``."""
        shard, local = self._shard(scene)
        rec = shard.read_record(local, scene)
        v = self.views
        poses = np.frombuffer(rec, dtype="<f4", count=v * POSE_DIM).reshape(v, POSE_DIM)
        lengths = np.frombuffer(rec, dtype="<u4", count=v, offset=v * POSE_DIM * 4)
        ends = np.cumsum(lengths) + v * (POSE_DIM + 1) * 4
        if v and int(ends[-1]) != len(rec):
            raise DataFormatError(f"{shard.path}: scene {scene}: frame lengths do not add up")
        frames = [rec[int(e - n) : int(e)] for e, n in zip(ends, lengths, strict=True)]
        if not np.isfinite(poses).all():
            raise DataFormatError(f"{shard.path}: scene {scene}: poses contain NaN or infinity")
        return frames, poses.copy()

    def read(self, scene: int, views: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Decoded scene: frames uint8 ``(n, H, W, 3)`` and poses float32 ``(n, 5)``.

        ``views`` selects (and orders) the views to decode; default all V.
        """
        frames, poses = self.read_raw(scene)
        idx = range(self.views) if views is None else views
        out = np.empty((len(idx), *self.image_size, 3), dtype=np.uint8)
        for j, v in enumerate(idx):
            try:
                img = decode_frame(frames[v])
            except OSError as e:
                raise DataFormatError(
                    f"{self._shard(scene)[0].path}: scene {scene} view {v}: cannot decode ({e})"
                ) from e
            if img.shape != out.shape[1:]:
                raise DataFormatError(
                    f"{self._shard(scene)[0].path}: scene {scene} view {v}: frame is "
                    f"{img.shape[0]}x{img.shape[1]}, dataset says {self.image_size[0]}x"
                    f"{self.image_size[1]}"
                )
            out[j] = img
        return out, poses[list(idx)]

    def verify_all(self) -> list[str]:
        """Check every shard's size and sha256 and every record's crc32c; return one error
        message per bad shard (a store whose manifest hashes were recomputed over corrupt
        records still fails on the records)."""
        errors = []
        for k, info in enumerate(self.manifest.shards):
            first = int(self._starts[k])
            try:
                shard = OpenShard(self.root / info.file, info, self.manifest, first, verify=True)
                try:
                    for local in range(info.scenes):
                        shard.read_record(local, first + local)
                finally:
                    shard.close()
            except DataFormatError as e:
                errors.append(str(e))
        return errors

    def bytes_on_disk(self) -> int:
        return sum(s.bytes for s in self.manifest.shards)

    def close(self) -> None:
        for shard in self._open.values():
            shard.close()
        self._open = {}
