"""Atomic file writes: a file under its final name is always complete, old or new.

:func:`atomic_write` is the one implementation used for checkpoints, configs, shards and
manifests.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
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
