"""The gqn scene store: one compact, sharded, random-access on-disk format for every dataset.

A store is a directory holding ``manifest.json`` and shard files (``*.gqns``). A scene is V views:
V compressed frames (PNG for generated data, the source JPEG bytes for converted DeepMind data)
and V raw poses ``(x, y, z, yaw, pitch)`` float32. The byte layout is documented in docs/data.md.

Shard file (all integers little-endian)::

    header   32 bytes: magic b"GQNSHARD", u32 version, u32 scenes, u32 views, u32 height,
                       u32 width, u32 codec (0 = PNG, 1 = JPEG)
    index    scenes x 16 bytes: u64 offset (from file start), u32 length, u32 crc32c of record
    records  per scene: V*5 float32 poses, V u32 frame lengths, then the V frame byte strings

Writers stage a shard in memory, write it with :func:`gqn.io.atomic_write` (temp file, fsync,
rename), then rewrite the manifest atomically the same way, so a reader never sees a half-written
shard. Readers open shard files lazily per process (``os.pread`` on a descriptor keyed by pid, so
forked DataLoader workers never share file offsets), check the header against the manifest, verify
the shard's sha256 on first open, and check each record's crc32c on every read.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import crc32c
import numpy as np
from PIL import Image

from gqn.data.manifest import CODECS, FORMAT_VERSION, DataFormatError, Manifest, ShardInfo
from gqn.io import atomic_write
from gqn.viewpoint import POSE_DIM

SHARD_SUFFIX = ".gqns"
MAGIC = b"GQNSHARD"
HEADER = struct.Struct("<8sIIIIII")
INDEX_ENTRY = struct.Struct("<QII")


# ---------------------------------------------------------------------------------------------
# Codecs


def encode_png(frame: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` -> PNG bytes (lossless; fast compression level)."""
    buf = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def decode_frame(blob: bytes) -> np.ndarray:
    """PNG or JPEG bytes -> uint8 ``(H, W, 3)``."""
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def image_size_of(blob: bytes) -> tuple[int, int]:
    """``(height, width)`` read from an image header without decoding the pixels."""
    with Image.open(io.BytesIO(blob)) as im:
        w, h = im.size
    return h, w


# ---------------------------------------------------------------------------------------------
# Shards


def check_scene(frames: Sequence[bytes], poses: np.ndarray, views: int, where: str) -> np.ndarray:
    """Validate one scene's frames and poses; return the poses as float32 ``(V, 5)``."""
    poses = np.asarray(poses, dtype=np.float32)
    if len(frames) != views or poses.shape != (views, POSE_DIM):
        raise DataFormatError(
            f"{where}: expected {views} frames and poses ({views}, {POSE_DIM}), "
            f"got {len(frames)} frames and poses {poses.shape}"
        )
    if not np.isfinite(poses).all():
        raise DataFormatError(f"{where}: poses contain NaN or infinity")
    return poses


def encode_shard(
    scenes: Sequence[tuple[Sequence[bytes], np.ndarray]],
    views: int,
    image_size: tuple[int, int],
    codec: str,
) -> bytes:
    """Serialise scenes ``[(V frame byte strings, poses (V, 5))]`` into one shard file's bytes."""
    n = len(scenes)
    records = []
    for frames, poses in scenes:
        poses = np.asarray(poses, dtype="<f4")
        lengths = np.array([len(b) for b in frames], dtype="<u4")
        records.append(b"".join([poses.tobytes(), lengths.tobytes(), *frames]))
    header = HEADER.pack(
        MAGIC, FORMAT_VERSION, n, views, image_size[0], image_size[1], CODECS.index(codec)
    )
    offset = HEADER.size + n * INDEX_ENTRY.size
    index = []
    for rec in records:
        index.append(INDEX_ENTRY.pack(offset, len(rec), crc32c.crc32c(rec)))
        offset += len(rec)
    return b"".join([header, *index, *records])


def write_shard(path: Path, data: bytes) -> ShardInfo:
    """Atomically write an encoded shard; return its manifest entry."""
    with atomic_write(path) as f:
        f.write(data)
    n = HEADER.unpack_from(data)[2]
    return ShardInfo(path.name, n, len(data), hashlib.sha256(data).hexdigest())


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class OpenShard:
    """A shard file open in this process: its descriptor and decoded index ``(n, 3)``."""

    def __init__(self, path: Path, info: ShardInfo, manifest: Manifest, first: int, verify: bool):
        self.path = path
        if not path.exists():
            raise DataFormatError(
                f"{path}: shard missing (scenes {first}..{first + info.scenes - 1})"
            )
        size = path.stat().st_size
        if size != info.bytes:
            raise DataFormatError(
                f"{path}: truncated or altered shard: {size} bytes on disk, manifest says "
                f"{info.bytes} (scenes {first}..{first + info.scenes - 1})"
            )
        if verify and sha256_file(path) != info.sha256:
            raise DataFormatError(
                f"{path}: sha256 checksum mismatch (corrupt shard; scenes "
                f"{first}..{first + info.scenes - 1})"
            )
        self.fd = os.open(path, os.O_RDONLY)
        head = os.pread(self.fd, HEADER.size, 0)
        if len(head) < HEADER.size:
            raise DataFormatError(f"{path}: truncated shard header")
        magic, version, n, views, h, w, codec = HEADER.unpack(head)
        if magic != MAGIC:
            raise DataFormatError(f"{path}: not a gqn shard (bad magic {magic!r})")
        if version > FORMAT_VERSION:
            raise DataFormatError(f"{path}: written by a newer gqn (shard version {version})")
        if (n, views, (h, w), CODECS[codec] if codec < len(CODECS) else None) != (
            info.scenes,
            manifest.views,
            tuple(manifest.image_size),
            manifest.codec,
        ):
            raise DataFormatError(
                f"{path}: shard header (scenes={n}, views={views}, size={h}x{w}) disagrees with "
                f"the manifest"
            )
        raw = os.pread(self.fd, n * INDEX_ENTRY.size, HEADER.size)
        if len(raw) < n * INDEX_ENTRY.size:
            raise DataFormatError(f"{path}: truncated shard index")
        self.index = np.frombuffer(
            raw, dtype=np.dtype([("off", "<u8"), ("len", "<u4"), ("crc", "<u4")])
        )
        ends = self.index["off"].astype(np.int64) + self.index["len"]
        if n and int(ends.max()) > size:
            bad = int(np.argmax(ends > size))
            raise DataFormatError(
                f"{path}: truncated shard (scene {first + bad} runs past the end)"
            )

    def read_record(self, local: int, scene: int) -> bytes:
        off, length, crc = self.index[local]
        rec = os.pread(self.fd, int(length), int(off))
        if len(rec) != length or crc32c.crc32c(rec) != crc:
            raise DataFormatError(f"{self.path}: scene {scene}: record corrupt (crc32c mismatch)")
        return rec

    def close(self) -> None:
        os.close(self.fd)
