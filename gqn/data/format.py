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
import json
import logging
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crc32c
import numpy as np
from PIL import Image

from gqn.io import atomic_write, is_temp_name
from gqn.viewpoint import POSE_DIM

log = logging.getLogger(__name__)

FORMAT_NAME = "gqn-scenes"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_SUFFIX = ".gqns"
MAGIC = b"GQNSHARD"
HEADER = struct.Struct("<8sIIIIII")
INDEX_ENTRY = struct.Struct("<QII")
CODECS = ("png", "jpeg")


class DataFormatError(ValueError):
    """A store, shard or scene that cannot be read; the message names the file and scene."""


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
# Manifest


@dataclass
class ShardInfo:
    """One shard's manifest entry."""

    file: str
    scenes: int
    bytes: int
    sha256: str
    source: str | None = None  # converted data: the source file this shard came from


@dataclass
class Manifest:
    """The contents of ``manifest.json``.

    ``source`` describes where the scenes come from: ``{"kind": "procedural", "family": ...,
    "params": {...}, "seed": ...}`` or ``{"kind": "deepmind", "dataset": ..., "split": ...}``.
    ``target_scenes`` is the number the writer is producing; ``complete`` turns true at the end.
    ``viewpoint`` is the kind of viewpoint stored per view (:func:`gqn.viewpoint.viewpoint_encoder`:
    "camera" for every family so far, and for manifests that do not record it). Records always
    hold 5 floats per view; an encoder reads the first ``raw_dim`` of them.
    """

    source: dict[str, Any]
    views: int
    image_size: tuple[int, int]
    codec: str
    shards: list[ShardInfo] = field(default_factory=list)
    target_scenes: int | None = None
    complete: bool = False
    progress: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    viewpoint: str = "camera"

    @property
    def num_scenes(self) -> int:
        return sum(s.scenes for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "source": self.source,
            "views": self.views,
            "image_size": list(self.image_size),
            "codec": self.codec,
            "scenes": self.num_scenes,
            "target_scenes": self.target_scenes,
            "complete": self.complete,
            "shards": [vars(s) for s in self.shards],
            "progress": self.progress,
            "viewpoint": self.viewpoint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Manifest:
        if not isinstance(d, dict):
            raise DataFormatError(
                f"{where}: not a gqn scene manifest (a JSON {type(d).__name__}, not an object)"
            )
        if d.get("format") != FORMAT_NAME:
            raise DataFormatError(f"{where}: not a gqn scene manifest (format={d.get('format')!r})")
        version = d.get("format_version")
        if not isinstance(version, int):
            raise DataFormatError(f"{where}: missing format_version")
        if version > FORMAT_VERSION:
            raise DataFormatError(
                f"{where}: written by a newer gqn (format version {version}, this gqn reads up to "
                f"{FORMAT_VERSION}); upgrade gqn"
            )
        try:
            m = cls(
                source=d["source"],
                views=int(d["views"]),
                image_size=(int(d["image_size"][0]), int(d["image_size"][1])),
                codec=d["codec"],
                shards=[ShardInfo(**s) for s in d["shards"]],
                target_scenes=d.get("target_scenes"),
                complete=bool(d.get("complete", False)),
                progress=d.get("progress", {}),
                format_version=version,
                viewpoint=d.get("viewpoint", "camera"),
            )
        except (KeyError, TypeError, IndexError) as e:
            raise DataFormatError(f"{where}: malformed manifest ({e!r})") from e
        if m.codec not in CODECS:
            raise DataFormatError(f"{where}: unknown codec {m.codec!r}")
        if m.views < 1 or min(m.image_size) < 1:
            raise DataFormatError(f"{where}: views and image_size must be positive")
        for k, s in enumerate(m.shards):
            _check_shard_entry(s, f"{where}: shards[{k}]")
        return m


def _check_shard_entry(s: ShardInfo, where: str) -> None:
    """Refuse a manifest shard entry whose fields have the wrong type or sign."""
    for name, tp in (("file", str), ("scenes", int), ("bytes", int), ("sha256", str)):
        value = getattr(s, name)
        if not isinstance(value, tp) or isinstance(value, bool):
            raise DataFormatError(
                f"{where}.{name} is {value!r}, not a{'n' if tp is int else ''} "
                f"{'integer' if tp is int else 'string'} (malformed manifest)"
            )
    if s.scenes < 0 or s.bytes < 0 or Path(s.file).name != s.file:
        raise DataFormatError(f"{where}: negative count or a path outside the store")


def write_manifest(root: Path, manifest: Manifest) -> None:
    with atomic_write(root / MANIFEST) as f:
        f.write(json.dumps(manifest.to_dict(), indent=1).encode())


def check_readable_dir(folder: Path) -> None:
    """PermissionError naming ``folder`` itself (not a file in it) when it cannot be listed or
    entered."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise PermissionError(
            f"{folder}: permission denied: this directory cannot be read; check its "
            f"permissions (ls -ld {folder})"
        )


def read_manifest(root: str | os.PathLike) -> Manifest:
    """Load ``root/manifest.json``; clear errors for a missing/empty directory or bad manifest."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such dataset directory")
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a directory (a dataset is a directory of shards)")
    check_readable_dir(root)
    path = root / MANIFEST
    if not path.exists():
        hint = " (the directory is empty)" if not any(root.iterdir()) else ""
        raise FileNotFoundError(f"{path}: missing; {root} is not a gqn dataset{hint}")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: not valid JSON ({e})") from e
    return Manifest.from_dict(d, str(path))


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


class _OpenShard:
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
        self._open: dict[int, _OpenShard] = {}
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

    def _shard(self, scene: int) -> tuple[_OpenShard, int]:
        if not 0 <= scene < len(self):
            raise IndexError(f"{self.root}: scene index {scene} out of range 0..{len(self) - 1}")
        if os.getpid() != self._pid:  # forked: never use the parent's descriptors
            self._open, self._pid = {}, os.getpid()
        k = int(np.searchsorted(self._starts, scene, side="right")) - 1
        if k not in self._open:
            info = self.manifest.shards[k]
            self._open[k] = _OpenShard(
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
                shard = _OpenShard(self.root / info.file, info, self.manifest, first, verify=True)
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


# ---------------------------------------------------------------------------------------------
# Writing


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

    def shard_names(self) -> set[str]:
        return {s.file for s in self.manifest.shards}

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


def bytes_per_image(m: Manifest) -> float:
    """Average stored bytes per frame (shard overhead and poses included)."""
    images = m.num_scenes * m.views
    return sum(s.bytes for s in m.shards) / images if images else math.nan
