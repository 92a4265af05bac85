"""Scene store format: round trip, random access, workers, resume, and every bad-input case."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from gqn import io as fmt_io
from gqn.data import store_writer
from gqn.data.generate import generate_dataset
from gqn.data.manifest import FORMAT_VERSION, DataFormatError
from gqn.data.shard import encode_png, encode_shard, sha256_file, write_shard
from gqn.data.store import SceneStore
from gqn.data.store_writer import StoreWriter


@dataclass
class FakeFamily:
    """A deterministic stand-in for a scene family: scene = f(seed, index)."""

    image_size: int = field(default=16, metadata={"help": "image side"})
    views: int = field(default=5, metadata={"help": "views per scene"})
    name = "fake"
    viewpoint = "camera"

    @property
    def views_per_scene(self) -> int:
        return self.views

    def params(self) -> dict:
        return {"image_size": self.image_size, "views": self.views}

    def render_scenes(self, seed, indices, device=None):
        n, v, s = len(indices), self.views, self.image_size
        frames = np.zeros((n, v, s, s, 3), np.uint8)
        poses = np.zeros((n, v, 5), np.float32)
        for j, i in enumerate(indices):
            rng = np.random.default_rng([seed, i])
            frames[j] = rng.integers(0, 8, (v, s, s, 3), dtype=np.uint8) * 32
            poses[j] = rng.normal(size=(v, 5))
        return frames, poses


def make_store(root, scenes=7, shard=3, seed=1, **kw):
    return generate_dataset(
        FakeFamily(**kw), root, scenes, seed=seed, shard_scenes=shard, batch=2, progress=False
    )


def test_round_trip_exact_and_random_access(tmp_path):
    fam = FakeFamily()
    make_store(tmp_path / "d", scenes=7, shard=3)
    store = SceneStore(tmp_path / "d")
    assert len(store) == 7 and store.views == 5 and store.image_size == (16, 16)
    assert [s.scenes for s in store.manifest.shards] == [3, 3, 1]
    frames, poses = fam.render_scenes(1, range(7))
    for i in (6, 0, 4, 3):  # random order, across shards
        f, p = store.read(i)
        np.testing.assert_array_equal(f, frames[i])
        assert p.tobytes() == poses[i].tobytes()
    f, p = store.read(5, [4, 1])
    np.testing.assert_array_equal(f, frames[5][[4, 1]])
    raw, _ = store.read_raw(2)
    assert raw[0] == encode_png(frames[2][0])
    with pytest.raises(IndexError):
        store.read(7)


def test_manifest_contents(tmp_path):
    make_store(tmp_path / "d", scenes=4, shard=3)
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION and m["complete"]
    assert m["source"] == {
        "kind": "procedural",
        "family": "fake",
        "params": {"image_size": 16, "views": 5},
        "seed": 1,
    }
    assert m["scenes"] == 4 and m["views"] == 5 and m["image_size"] == [16, 16]
    for s in m["shards"]:
        assert sha256_file(tmp_path / "d" / s["file"]) == s["sha256"]


def _read_scene(args):
    root, i = args
    return SceneStore(root).read(i)[1]


def test_multiworker_dataloader(tmp_path):
    from gqn.data.dataset import SceneDataset

    make_store(tmp_path / "d", scenes=6, shard=2)
    ds = SceneDataset(tmp_path / "d")
    ds.store.read(0)  # a handle open in the parent must not leak into the workers
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    poses = torch.cat([p for _, p in loader])
    _, expect = FakeFamily().render_scenes(1, range(6))
    np.testing.assert_array_equal(poses.numpy(), expect)


class Boom(RuntimeError):
    pass


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch):
    make_store(tmp_path / "ref", scenes=8, shard=3)
    real = store_writer.write_shard
    calls = {"n": 0}

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] == 2:  # die mid-write of the second shard: a partial temp file remains
            temp = path.parent / f".{path.name}.0123456789ab{fmt_io.TMP_SUFFIX}"
            temp.write_bytes(data[: len(data) // 2])
            raise Boom
        return real(path, data)

    monkeypatch.setattr(store_writer, "write_shard", flaky)
    with pytest.raises(Boom):
        make_store(tmp_path / "d", scenes=8, shard=3)
    partial = SceneStore(tmp_path / "d")
    assert len(partial) == 3 and not partial.manifest.complete
    # an orphan shard (renamed, manifest not yet updated) is discarded too
    (tmp_path / "d" / "shard-00001.gqns").write_bytes(b"junk")
    monkeypatch.setattr(store_writer, "write_shard", real)
    make_store(tmp_path / "d", scenes=8, shard=3)
    assert not list((tmp_path / "d").glob("*.tmp"))
    a, b = SceneStore(tmp_path / "ref"), SceneStore(tmp_path / "d")
    assert [s.sha256 for s in a.manifest.shards] == [s.sha256 for s in b.manifest.shards]
    assert len(b) == 8 and b.manifest.complete
    for i in range(8):
        assert a.read_raw(i)[0] == b.read_raw(i)[0]


def test_parallel_workers_write_the_same_store_and_resume(tmp_path):
    """workers=3 render whole shards in processes; the store equals a one-worker store, also when
    a parallel run resumes one that stopped after its first shard."""
    make_store(tmp_path / "ref", scenes=8, shard=3)
    make_store(tmp_path / "d", scenes=3, shard=3)  # as if stopped after the first shard
    fam = FakeFamily()
    generate_dataset(fam, tmp_path / "d", 8, seed=1, shard_scenes=3, batch=2, progress=False,
                     workers=3)  # fmt: skip
    a, b = SceneStore(tmp_path / "ref"), SceneStore(tmp_path / "d")
    assert [s.sha256 for s in a.manifest.shards] == [s.sha256 for s in b.manifest.shards]
    assert [s.scenes for s in b.manifest.shards] == [3, 3, 2] and b.manifest.complete
    with pytest.raises(ValueError, match="workers > 1 render on the CPU"):
        generate_dataset(fam, tmp_path / "e", 4, workers=2, device="cuda", progress=False)


def test_resume_with_other_params_is_refused(tmp_path):
    make_store(tmp_path / "d", scenes=2)
    with pytest.raises(ValueError, match="already holds a different dataset"):
        make_store(tmp_path / "d", scenes=2, image_size=8)
    with pytest.raises(ValueError, match="different dataset"):
        make_store(tmp_path / "d", scenes=2, seed=2)


def _corrupt(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checksum_mismatch_names_file_and_scenes_rest_readable(tmp_path):
    make_store(tmp_path / "d", scenes=6, shard=3)
    shard = tmp_path / "d" / "shard-00001.gqns"
    _corrupt(shard, shard.stat().st_size - 10)
    store = SceneStore(tmp_path / "d")
    msg = r"shard-00001.gqns: sha256 checksum mismatch.*3\.\.5"
    with pytest.raises(DataFormatError, match=msg):
        store.read(4)
    store.read(1)  # other shards stay readable
    errors = store.verify_all()
    assert len(errors) == 1 and "shard-00001" in errors[0]
    # without sha256 verification, the per-scene crc still names the scene
    lazy = SceneStore(tmp_path / "d", verify=False)
    with pytest.raises(DataFormatError, match=r"shard-00001.gqns: scene 5: record corrupt"):
        lazy.read(5)


def test_truncated_shard(tmp_path):
    make_store(tmp_path / "d", scenes=6, shard=3)
    shard = tmp_path / "d" / "shard-00000.gqns"
    shard.write_bytes(shard.read_bytes()[:-100])
    store = SceneStore(tmp_path / "d")
    with pytest.raises(DataFormatError, match=r"shard-00000.gqns: truncated.*scenes 0\.\.2"):
        store.read(0)
    assert store.read(3)[0].shape == (5, 16, 16, 3)


def test_newer_format_version(tmp_path):
    make_store(tmp_path / "d", scenes=1)
    path = tmp_path / "d" / "manifest.json"
    m = json.loads(path.read_text())
    m["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(m))
    with pytest.raises(DataFormatError, match=r"written by a newer gqn.*upgrade"):
        SceneStore(tmp_path / "d")


def test_missing_and_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such dataset directory"):
        SceneStore(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"manifest.json: missing.*empty"):
        SceneStore(tmp_path / "empty")


def _writer(root, size=16, views=2):
    return StoreWriter(root, {"kind": "test"}, views, (size, size), "png")


def test_write_rejects_wrong_frame_size_and_nan(tmp_path):
    good = [encode_png(np.zeros((16, 16, 3), np.uint8))] * 2
    small = [good[0], encode_png(np.zeros((8, 16, 3), np.uint8))]
    w = _writer(tmp_path / "d")
    with pytest.raises(DataFormatError, match=r"s.gqns: scene 11 view 1: frame is 8x16"):
        w.write("s.gqns", [(good, np.zeros((2, 5))), (small, np.zeros((2, 5)))], first_scene=10)
    poses = np.zeros((2, 5))
    poses[1, 3] = np.nan
    with pytest.raises(DataFormatError, match=r"scene 10: poses contain NaN"):
        w.write("s.gqns", [(good, poses)], first_scene=10)
    assert _writer(tmp_path / "d").num_scenes == 0


def test_read_rejects_wrong_frame_size_and_nan(tmp_path):
    good = encode_png(np.zeros((16, 16, 3), np.uint8))
    small = encode_png(np.zeros((8, 8, 3), np.uint8))
    nan = np.zeros((2, 5), np.float32)
    nan[0, 0] = np.nan
    # bypass the writer's checks to produce bad records, as a buggy or foreign writer might
    data = encode_shard(
        [([good, good], np.zeros((2, 5))), ([good, small], np.zeros((2, 5))), ([good, good], nan)],
        2,
        (16, 16),
        "png",
    )
    w = _writer(tmp_path / "d")
    w.add_shard(write_shard(tmp_path / "d" / "bad.gqns", data))
    store = SceneStore(tmp_path / "d")
    store.read(0)
    with pytest.raises(DataFormatError, match=r"bad.gqns: scene 1 view 1: frame is 8x8"):
        store.read(1)
    with pytest.raises(DataFormatError, match=r"bad.gqns: scene 2: poses contain NaN"):
        store.read(2)


def test_store_pickles_without_handles(tmp_path):
    import pickle

    make_store(tmp_path / "d", scenes=2)
    store = SceneStore(tmp_path / "d")
    store.read(0)
    clone = pickle.loads(pickle.dumps(store))
    assert clone._open == {} and clone.read(1)[0].shape == (5, 16, 16, 3)
    assert os.getpid() == clone._pid
