"""Atomic file writes: a file under its final name is always complete, old or new.

:func:`atomic_write` is the one implementation used for checkpoints, configs, shards and
manifests. :func:`write_checked` / :func:`read_checked` add a ``sha256sum``-style sidecar file
(``<name>.sha256``) that proves on reading that the bytes are those that were written.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
CHECKSUM_SUFFIX = ".sha256"
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TMP_SUFFIX) + "$")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file object whose contents replace ``path`` atomically on success.

    The data goes to a temp file ``.<name>.<random>.tmp`` in the directory of ``path`` (which
    must exist), so the final rename never crosses file systems. When the ``with`` block ends
    without an exception the file is flushed and fsynced, renamed over ``path`` with
    :func:`os.replace` and the directory is fsynced, so after a crash ``path`` holds either its
    previous contents or the complete new ones. On any exception (including a full disk or
    ``KeyboardInterrupt``) the temp file is removed, ``path`` is left untouched and the
    exception propagates. Leftover temp files of a killed process end in :data:`TMP_SUFFIX`.
    A new file gets the mode a plain ``open()`` would give it (0666 less the umask); a
    replaced file keeps its mode.

    Example::

        with atomic_write("out.json") as f:
            f.write(json.dumps(data).encode())
    """
    path = Path(os.path.realpath(path))  # through a symlink: replace its target, keep the link
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            _keep_mode(path, f.fileno())
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is that of a temp file :func:`atomic_write` makes (``.<name>.<12 hex
    digits>.tmp``), i.e. one a killed writer may have left behind."""
    return _TEMP_NAME.match(name) is not None


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file next to ``path``, created with mode 0666 so that the kernel applies the
    umask, as for a plain ``open()`` (``tempfile.mkstemp`` would make it 0600)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _keep_mode(path: Path, fd: int) -> None:
    """Give the new file the mode of the file it replaces (as writing in place would keep it);
    where the file system has no modes to set, leave it."""
    with suppress(OSError):  # a new path keeps the umask mode
        os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ChecksumError(ValueError):
    """A file whose bytes do not match its checksum file: corrupted since it was written."""


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar ``<path>.sha256`` holding ``path``'s sha256."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def write_checked(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` and its sha256 to :func:`checksum_path`, each atomically.

    The sidecar is written second and reads like ``sha256sum`` output (``sha256sum -c`` checks
    it). If writing the sidecar fails, ``path`` is removed again, so a file under its final name
    either has a matching checksum or (killed between the two renames) none.
    """
    path = Path(path)
    with atomic_write(path) as f:
        f.write(data)
    try:
        with atomic_write(checksum_path(path)) as f:
            f.write(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def read_checked(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """The bytes of ``path`` and whether a checksum file vouched for them.

    Raises :class:`ChecksumError` naming the file when the sidecar exists and disagrees; returns
    ``(data, False)`` when there is no sidecar (files written before checksums existed).
    """
    path = Path(path)
    data = path.read_bytes()
    sidecar = checksum_path(path)
    if not sidecar.exists():
        return data, False
    expected = sidecar.read_text().split(maxsplit=1)[0] if sidecar.stat().st_size else ""
    if hashlib.sha256(data).hexdigest() != expected:
        raise ChecksumError(
            f"{path} does not match its checksum {sidecar.name}: the file was corrupted or "
            "altered after it was written"
        )
    return data, True
