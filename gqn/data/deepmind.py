"""Convert DeepMind's gqn-datasets TFRecords to a scene store, without TensorFlow.

DeepMind's layout is ``<dataset>/train/*.tfrecord`` and ``<dataset>/test/*.tfrecord``; each
record is a ``tf.train.Example`` with ``frames`` (V JPEG byte strings) and ``cameras`` (V x 5
float32, flattened; raw ``(x, y, z, yaw, pitch)``). Record framing::

    u64 length | u32 masked crc32c(length bytes) | data | u32 masked crc32c(data)

with ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32)``. Both CRCs are verified
(the ``tfrecord`` package does not), so a corrupt record is reported with its file and index.
JPEG bytes are kept exactly as they are; only their header is read to check the image size.

Each source file becomes one or more shards named after it, written by a worker process;
the parent records a file's shards in the manifest only when the whole file is done, so an
interrupted conversion resumes at file granularity.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import crc32c
import numpy as np
from tqdm import tqdm

from gqn.data.manifest import DataFormatError, ShardInfo
from gqn.data.shard import check_scene, encode_shard, image_size_of, write_shard
from gqn.data.store_writer import StoreWriter

log = logging.getLogger(__name__)

# name -> (image size, views per scene), from DeepMind's gqn-datasets reader.
DATASETS: dict[str, tuple[int, int]] = {
    "jaco": (64, 11),
    "mazes": (84, 300),
    "rooms_free_camera_with_object_rotations": (128, 10),
    "rooms_ring_camera": (64, 10),
    "rooms_free_camera_no_object_rotations": (64, 10),
    "shepard_metzler_5_parts": (64, 15),
    "shepard_metzler_7_parts": (64, 15),
}
SPLITS = ("train", "test")
CRC_MASK = 0xA282EAD8
DEFAULT_SHARD_SCENES = 1000


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK) & 0xFFFFFFFF


def iter_records(f: BinaryIO, name: str) -> Iterator[bytes]:
    """Yield the payload of each record in a TFRecord stream, verifying both CRCs."""
    index = 0
    while True:
        head = f.read(12)
        if not head:
            return
        if len(head) < 12:
            raise DataFormatError(f"{name}: record {index}: truncated length header")
        length, length_crc = struct.unpack("<QI", head)
        if masked_crc32c(head[:8]) != length_crc:
            raise DataFormatError(f"{name}: record {index}: length CRC mismatch (corrupt file)")
        data = f.read(length)
        tail = f.read(4)
        if len(data) < length or len(tail) < 4:
            raise DataFormatError(f"{name}: record {index}: truncated record")
        if masked_crc32c(data) != struct.unpack("<I", tail)[0]:
            raise DataFormatError(f"{name}: record {index}: data CRC mismatch (corrupt record)")
        yield data
        index += 1


def parse_example(data: bytes, views: int, where: str) -> tuple[list[bytes], np.ndarray]:
    """A serialized ``tf.train.Example`` -> (V JPEG byte strings, poses float32 ``(V, 5)``)."""
    from tfrecord import example_pb2

    ex = example_pb2.Example()
    try:
        ex.ParseFromString(data)
    except Exception as e:  # protobuf raises its own DecodeError type
        raise DataFormatError(f"{where}: not a tf.train.Example ({e})") from e
    feats = ex.features.feature
    if "frames" not in feats or "cameras" not in feats:
        raise DataFormatError(
            f"{where}: missing 'frames' or 'cameras' feature (has {sorted(feats.keys())})"
        )
    frames = list(feats["frames"].bytes_list.value)
    cameras = np.asarray(feats["cameras"].float_list.value, dtype=np.float32)
    if cameras.size != views * 5:
        raise DataFormatError(f"{where}: cameras has {cameras.size} values, expected {views}x5")
    return frames, cameras.reshape(views, 5)


@dataclass
class _FileJob:
    path: Path
    out_dir: Path
    views: int
    image_size: int
    shard_scenes: int


def _convert_file(job: _FileJob) -> tuple[str, list[ShardInfo]]:
    """Convert one TFRecord file into shards ``<stem>-NNN.gqns`` in ``job.out_dir``."""
    size = (job.image_size, job.image_size)
    shards, pending, part = [], [], 0

    def flush() -> None:
        nonlocal pending, part
        data = encode_shard(pending, job.views, size, "jpeg")
        info = write_shard(job.out_dir / f"{job.path.stem}-{part:03d}.gqns", data)
        info.source = job.path.name
        shards.append(info)
        pending, part = [], part + 1

    with open(job.path, "rb") as f:
        for i, data in enumerate(iter_records(f, str(job.path))):
            where = f"{job.path}: record {i}"
            frames, poses = parse_example(data, job.views, where)
            poses = check_scene(frames, poses, job.views, where)
            for v, blob in enumerate(frames):
                try:
                    hw = image_size_of(blob)
                except OSError as e:
                    raise DataFormatError(f"{where} view {v}: not a readable image ({e})") from e
                if hw != size:
                    raise DataFormatError(
                        f"{where} view {v}: frame is {hw[0]}x{hw[1]}, "
                        f"dataset expects {size[0]}x{size[1]}"
                    )
            pending.append((frames, poses))
            if len(pending) == job.shard_scenes:
                flush()
    if pending:
        flush()
    return job.path.name, shards


def infer_dataset(src: Path, dataset: str | None) -> str:
    """The DeepMind dataset name, from ``dataset`` or the directory name (``<name>[/split]``)."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise ValueError(f"unknown DeepMind dataset {dataset!r}; known: {sorted(DATASETS)}")
        return dataset
    for name in (src.name, src.parent.name):
        if name in DATASETS:
            return name
    raise ValueError(
        f"cannot infer the dataset from {src}; pass --dataset (one of {sorted(DATASETS)})"
    )


def split_dirs(src: Path) -> dict[str | None, Path]:
    """``{split: directory}`` for a dataset root with train/test, or ``{None: src}``."""
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such directory")
    found = {s: src / s for s in SPLITS if (src / s).is_dir()}
    return found or {None: src}


def convert_split(
    src: Path,
    dst: Path,
    dataset: str,
    split: str | None,
    workers: int = 1,
    shard_scenes: int = DEFAULT_SHARD_SCENES,
    progress: bool = True,
) -> StoreWriter:
    """Convert every ``*.tfrecord`` in ``src`` into the store ``dst`` (resuming if present)."""
    files = sorted(src.glob("*.tfrecord"))
    if not files:
        raise FileNotFoundError(f"{src}: no *.tfrecord files")
    size, views = DATASETS[dataset]
    writer = StoreWriter(
        dst, {"kind": "deepmind", "dataset": dataset, "split": split}, views, (size, size), "jpeg"
    )
    done = set(writer.manifest.progress.get("files_done", []))
    jobs = [_FileJob(p, Path(dst), views, size, shard_scenes) for p in files if p.name not in done]
    order = {p.name: i for i, p in enumerate(files)}
    bar = tqdm(
        total=len(files),
        initial=len(files) - len(jobs),
        unit="file",
        desc=f"convert {dataset}{'/' + split if split else ''}",
        disable=not progress,
    )
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(max(1, workers)) if workers > 1 else _InlinePool() as pool:
        for name, shards in pool.imap_unordered(_convert_file, jobs):
            m = writer.manifest
            m.shards = sorted([*m.shards, *shards], key=lambda s: (order.get(s.source, -1), s.file))
            m.progress.setdefault("files_done", []).append(name)
            writer.commit()
            bar.update(1)
            bar.set_postfix(scenes=m.num_scenes)
    bar.close()
    writer.finish()
    return writer


class _InlinePool:
    """``imap_unordered`` in this process (workers=1; easier to debug, no fork)."""

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def imap_unordered(fn, items):
        return map(fn, items)


def convert_deepmind(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    dataset: str | None = None,
    workers: int = 1,
    shard_scenes: int = DEFAULT_SHARD_SCENES,
    progress: bool = True,
) -> dict[str | None, Path]:
    """Convert a DeepMind dataset directory (or one split directory) to scene stores.

    ``src`` with ``train/`` and ``test/`` gives ``dst/train`` and ``dst/test``; a directory of
    ``*.tfrecord`` files gives one store at ``dst``. Returns ``{split: store path}``.
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist: pass the DeepMind dataset directory")
    if shard_scenes < 1:
        raise ValueError(f"shard_scenes (--shard-size) must be >= 1, got {shard_scenes}")
    name = infer_dataset(src, dataset)
    out = {}
    for split, d in split_dirs(src).items():
        target = dst / split if split else dst
        convert_split(
            d,
            target,
            name,
            split if split else (src.name if src.name in SPLITS else None),
            workers,
            shard_scenes,
            progress,
        )
        out[split] = target
    return out
