"""Atomic file writes: a file under its final name is always complete, old or new.

:func:`atomic_write` is the one implementation used for checkpoints, configs, shards and
manifests.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


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
    The new file gets the mode a plain ``open()`` would give it (0666 less the umask).

    Example::

        with atomic_write("out.json") as f:
            f.write(json.dumps(data).encode())
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _new_file_mode())  # mkstemp makes it owner-only (0600)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
