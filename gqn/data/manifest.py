"""The manifest of a scene store (``manifest.json``): what the store holds (source, views, image
size, codec, viewpoint kind) and its shards with their sizes and sha256; written atomically, read
with clear errors. The store as a whole is described in :mod:`gqn.data.shard` and docs/data.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqn.io import atomic_write

FORMAT_NAME = "gqn-scenes"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CODECS = ("png", "jpeg")


class DataFormatError(ValueError):
    """A store, shard or scene that cannot be read; the message names the file and scene."""


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


def bytes_per_image(m: Manifest) -> float:
    """Average stored bytes per frame (shard overhead and poses included)."""
    images = m.num_scenes * m.views
    return sum(s.bytes for s in m.shards) / images if images else math.nan
