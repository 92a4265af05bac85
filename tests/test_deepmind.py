"""DeepMind TFRecord conversion: exact round trip, CRC checks, size checks, resume."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image
from tfrecord.writer import TFRecordWriter

from gqn.data import deepmind
from gqn.data.deepmind import convert_deepmind, iter_records, masked_crc32c
from gqn.data.manifest import DataFormatError
from gqn.data.store import SceneStore


def jpeg(rng, size):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def write_tfrecord(path, scenes):
    """Write scenes [(frames [bytes], cameras (V, 5))] exactly as DeepMind's files are laid out."""
    w = TFRecordWriter(str(path))
    for frames, cameras in scenes:
        w.write({"frames": (frames, "byte"), "cameras": (cameras.reshape(-1).tolist(), "float")})
    w.close()


def make_scenes(seed, n, views=15, size=64):
    rng = np.random.default_rng(seed)
    return [
        ([jpeg(rng, size) for _ in range(views)], rng.normal(size=(views, 5)).astype(np.float32))
        for _ in range(n)
    ]


@pytest.fixture
def dm_root(tmp_path):
    root = tmp_path / "shepard_metzler_5_parts"
    scenes = {}
    for split, files in (("train", 3), ("test", 1)):
        (root / split).mkdir(parents=True)
        scenes[split] = []
        for f in range(files):
            s = make_scenes(hash((split, f)) % 1000, 2 + f, views=15)
            write_tfrecord(root / split / f"{f:04d}-of-{files:04d}.tfrecord", s)
            scenes[split] += s
    return root, scenes


def test_masked_crc_matches_tfrecord_package():
    data = b"hello gqn"
    assert struct.pack("<I", masked_crc32c(data)) == TFRecordWriter.masked_crc(data)


def test_round_trip_exact(dm_root, tmp_path):
    root, scenes = dm_root
    out = convert_deepmind(root, tmp_path / "out", workers=2, shard_scenes=2, progress=False)
    assert set(out) == {"train", "test"}
    for split in ("train", "test"):
        store = SceneStore(out[split])
        m = store.manifest
        assert m.source == {
            "kind": "deepmind",
            "dataset": "shepard_metzler_5_parts",
            "split": split,
        }
        assert (m.views, m.image_size, m.codec, m.complete) == (15, (64, 64), "jpeg", True)
        assert len(store) == len(scenes[split])
        for i, (frames, cameras) in enumerate(scenes[split]):
            got, poses = store.read_raw(i)
            assert got == frames  # JPEG bytes untouched
            assert poses.tobytes() == cameras.tobytes()
        assert store.read(0)[0].shape == (15, 64, 64, 3)
    # no larger than the TFRecords (shard overhead is far below the proto framing)
    tf_bytes = sum(p.stat().st_size for p in (root / "train").glob("*.tfrecord"))
    assert SceneStore(out["train"]).bytes_on_disk() <= tf_bytes


def test_crc_corruption_detected_with_file_and_record(dm_root, tmp_path):
    root, _ = dm_root
    path = root / "train" / "0001-of-0003.tfrecord"
    data = bytearray(path.read_bytes())
    first_len = struct.unpack("<Q", data[:8])[0]
    second = 8 + 4 + first_len + 4
    data[second + 12 + 100] ^= 0x01  # flip one bit in record 1's payload
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"0001-of-0003.tfrecord: record 1: data CRC"):
        convert_deepmind(root / "train", tmp_path / "out", progress=False)
    data[second + 12 + 100] ^= 0x01
    data[second + 2] ^= 0x01  # now corrupt record 1's length field
    path.write_bytes(bytes(data))
    with open(path, "rb") as f, pytest.raises(DataFormatError, match=r"record 1: length CRC"):
        list(iter_records(f, str(path)))


def test_truncated_tfrecord(tmp_path):
    path = tmp_path / "a.tfrecord"
    write_tfrecord(path, make_scenes(0, 2, views=2, size=8))
    path.write_bytes(path.read_bytes()[:-7])
    with open(path, "rb") as f, pytest.raises(DataFormatError, match=r"record 1: truncated"):
        list(iter_records(f, str(path)))


def test_wrong_jpeg_size_rejected(tmp_path):
    root = tmp_path / "rooms_ring_camera"
    root.mkdir()
    scenes = make_scenes(0, 1, views=10, size=64) + make_scenes(1, 1, views=10, size=32)
    write_tfrecord(root / "x.tfrecord", scenes)
    with pytest.raises(DataFormatError, match=r"x.tfrecord: record 1 view 0: frame is 32x32"):
        convert_deepmind(root, tmp_path / "out", progress=False)


def test_wrong_view_count_and_unknown_dataset(tmp_path):
    root = tmp_path / "jaco"
    root.mkdir()
    write_tfrecord(root / "x.tfrecord", make_scenes(0, 1, views=10, size=64))
    with pytest.raises(DataFormatError, match=r"x.tfrecord: record 0: cameras has 50 values"):
        convert_deepmind(root, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="pass --dataset"):
        convert_deepmind(tmp_path, tmp_path / "out2", progress=False)
    with pytest.raises(ValueError, match="unknown DeepMind dataset"):
        convert_deepmind(root, tmp_path / "out2", dataset="nope", progress=False)


def test_resume_per_source_file(dm_root, tmp_path, monkeypatch):
    root, scenes = dm_root
    real = deepmind._convert_file
    seen = []

    def flaky(job):
        if job.path.name.startswith("0002"):
            raise RuntimeError("killed")
        seen.append(job.path.name)
        return real(job)

    monkeypatch.setattr(deepmind, "_convert_file", flaky)
    with pytest.raises(RuntimeError):
        convert_deepmind(root / "train", tmp_path / "out", progress=False)
    assert len(SceneStore(tmp_path / "out")) == 2 + 3
    monkeypatch.setattr(deepmind, "_convert_file", real)
    seen.clear()
    monkeypatch.setattr(
        deepmind, "_convert_file", lambda job: (seen.append(job.path.name), real(job))[1]
    )
    convert_deepmind(root / "train", tmp_path / "out", progress=False)
    assert seen == ["0002-of-0003.tfrecord"]
    store = SceneStore(tmp_path / "out")
    assert store.manifest.complete and len(store) == len(scenes["train"])
    for i, (frames, _) in enumerate(scenes["train"]):
        assert store.read_raw(i)[0] == frames
