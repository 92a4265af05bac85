"""gqn.io.atomic_write: the new contents on success, the old file and no temp file on failure."""

from __future__ import annotations

import os
import stat

import pytest

from gqn.io import atomic_write


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "f.bin"
    with atomic_write(path) as f:
        f.write(b"first")
    with atomic_write(path) as f:
        f.write(b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, error):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(error)), atomic_write(path) as f:
        f.write(b"half of the new")
        raise error
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failure_on_a_new_path_creates_nothing(tmp_path):
    with pytest.raises(ValueError), atomic_write(tmp_path / "new.bin") as f:
        f.write(b"partial")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_new_file_gets_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "f.bin") as f:
            f.write(b"x")
        (tmp_path / "plain.bin").write_bytes(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "f.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode_and_a_link_its_target(tmp_path):
    path = tmp_path / "shared.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)  # neither what the umask nor what mkstemp would give
    link = tmp_path / "link.bin"
    link.symlink_to(path)
    old = os.umask(0o022)
    try:
        with atomic_write(link) as f:
            f.write(b"new")
    finally:
        os.umask(old)
    assert link.is_symlink() and path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
