"""Scene families: interface, determinism, geometry of cameras and objects, parameters."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from gqn.data.scenes import FAMILIES, SceneFamily, make_family, scene_rng
from gqn.data.scenes.shepard_metzler import random_polycube
from gqn.data.scenes.statistics import DEEPMIND_SHEPARD_METZLER, object_statistics
from gqn.viewpoint import look_at_origin, look_direction

SMALL = {
    "shepard-metzler": {"image_size": 16, "views": 3},
    "rooms": {"image_size": 16, "views": 3},
    "traveling-salesman": {"image_size": 16, "frames": 3, "shapes": 3},
    "color-reaction": {"image_size": 16, "frames": 4, "shapes": 2},
    "dag-chase": {"image_size": 16, "frames": 3},
    "mnist-dice": {"image_size": 16, "views": 3},
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_shapes_dtypes_and_params_roundtrip(name):
    fam = make_family(name, **SMALL[name])
    assert isinstance(fam, SceneFamily) and fam.name == name
    frames, poses = fam.render_scenes(7, [0, 1])
    v = SMALL[name].get("views", SMALL[name].get("frames"))
    assert frames.shape == (2, v, 16, 16, 3) and frames.dtype == np.uint8
    assert poses.shape == (2, v, 5) and poses.dtype == np.float32
    assert fam.views_per_scene == v and fam.image_size == 16
    params = json.loads(json.dumps(fam.params()))
    assert make_family(name, **params) == fam
    for f in dataclasses.fields(fam):
        assert f.metadata.get("help"), f"{name}.{f.name} has no help string"
    empty, empty_poses = fam.render_scenes(7, [])
    assert empty.shape == (0, v, 16, 16, 3) and empty_poses.shape == (0, v, 5)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_scene_depends_only_on_seed_and_index(name):
    fam = make_family(name, **SMALL[name])
    alone, alone_poses = fam.render_scenes(3, [5])
    batch, batch_poses = fam.render_scenes(3, [2, 5, 9])
    assert np.array_equal(alone[0], batch[1]) and np.array_equal(alone_poses[0], batch_poses[1])
    assert not np.array_equal(batch[0], batch[1])
    other_seed, _ = fam.render_scenes(4, [5])
    assert not np.array_equal(alone, other_seed)
    assert scene_rng(name, 3, 5).integers(1 << 30) == scene_rng(name, 3, 5).integers(1 << 30)


@pytest.mark.parametrize("parts", [1, 2, 5, 7, 12])
def test_polycube_face_connected_without_overlap(parts):
    for index in range(20):
        cells = random_polycube(scene_rng("t", parts, index), parts)
        assert cells.shape == (parts, 3)
        assert len({tuple(c) for c in cells}) == parts
        seen, frontier = {tuple(cells[0])}, [tuple(cells[0])]
        cellset = {tuple(c) for c in cells}
        while frontier:
            c = frontier.pop()
            for axis in range(3):
                for step in (-1, 1):
                    nb = list(c)
                    nb[axis] += step
                    if tuple(nb) in cellset and tuple(nb) not in seen:
                        seen.add(tuple(nb))
                        frontier.append(tuple(nb))
        assert seen == cellset


def test_shepard_metzler_cameras_look_at_origin():
    fam = make_family("shepard-metzler", image_size=16, views=15)
    _, poses = fam.render_scenes(0, [0, 1])
    pos = torch.from_numpy(poses[..., :3]).double()
    torch.testing.assert_close(pos.norm(dim=-1), torch.full((2, 15), 3.333, dtype=torch.float64))
    torch.testing.assert_close(torch.from_numpy(poses).double(), look_at_origin(pos))
    d = look_direction(torch.from_numpy(poses[..., 3]), torch.from_numpy(poses[..., 4])).double()
    torch.testing.assert_close(d, -pos / pos.norm(dim=-1, keepdim=True), atol=1e-5, rtol=0)
    ranged = make_family("shepard-metzler", image_size=16, radius_min=2.5, radius_max=4.0)
    r = np.linalg.norm(ranged.render_scenes(0, range(4))[1][..., :3], axis=-1)
    assert r.min() >= 2.5 - 1e-5 and r.max() <= 4.0 + 1e-5 and r.std() > 0.1


def test_shepard_metzler_look_black_background_centred_object():
    fam = make_family("shepard-metzler", image_size=64, views=8)
    frames, _ = fam.render_scenes(0, range(8))
    mask = frames.max(-1) > 0
    assert not mask[..., 0, :].any() and not mask[..., :, 0].any()
    cols = mask.any(-2)
    spans = []
    for m in cols.reshape(-1, 64):
        idx = np.nonzero(m)[0]
        spans.append((idx.max() - idx.min() + 1) / 64)
    assert 0.33 < float(np.median(spans)) < 0.5
    rows, colz = np.nonzero(mask.reshape(-1, 64, 64).any(0))
    assert abs(rows.mean() - 31.5) < 4 and abs(colz.mean() - 31.5) < 4


def test_shepard_metzler_defaults_match_deepmind_statistics():
    """Default SM frames at 64 x 64 are within 10 % of DeepMind's on every statistic."""
    frames, _ = make_family("shepard-metzler", image_size=64).render_scenes(0, range(40))
    stats = object_statistics(frames)
    off = {k: round(stats[k] / v - 1, 3) for k, v in DEEPMIND_SHEPARD_METZLER.items()}
    assert all(abs(e) < 0.1 for e in off.values()), off


def test_object_statistics_definitions():
    image = np.zeros((2, 8, 8, 3), np.uint8)
    image[0, 2:4, 1:6] = (255, 0, 0)  # 2 x 5 box: value 1, saturation 1
    image[1, 0, 0] = (100, 50, 50)  # one pixel: value 100/255, saturation 0.5
    stats = object_statistics(image)
    assert stats["coverage"] == pytest.approx(11 / 128)
    assert stats["bbox_span"] == pytest.approx((5 + 1) / 2)
    assert stats["value_median"] == 1.0 and stats["saturation_median"] == 1.0
    assert stats["value_p90"] == 1.0
    with pytest.raises(ValueError, match="black"):
        object_statistics(np.zeros((1, 4, 4, 3), np.uint8))


def test_shepard_metzler_centre_pixel_hits_object_centre():
    """With a single cube at the origin, the image centre shows it from every camera."""
    fam = make_family("shepard-metzler", image_size=32, views=10, parts=1)
    frames, _ = fam.render_scenes(1, [0])
    assert (frames[0, :, 15:17, 15:17].max(-1) > 0).all()
    assert (frames[0, :, :4].max() == 0) and (frames[0, :, -4:].max() == 0)


def test_rooms_ring_cameras():
    fam = make_family("rooms", image_size=16, views=10)
    _, poses = fam.render_scenes(0, [0, 1])
    xy = np.linalg.norm(poses[..., :2], axis=-1)
    np.testing.assert_allclose(xy, fam.ring_radius, rtol=1e-5)
    np.testing.assert_allclose(poses[..., 2], fam.ring_height, rtol=1e-5)
    pos = torch.from_numpy(poses[..., :3]).double()
    d = look_direction(torch.from_numpy(poses[..., 3]), torch.from_numpy(poses[..., 4])).double()
    torch.testing.assert_close(d, -pos / pos.norm(dim=-1, keepdim=True), atol=1e-5, rtol=0)


def test_rooms_free_cameras_inside_room():
    fam = make_family("rooms", image_size=16, views=10, camera="free")
    _, poses = fam.render_scenes(0, range(4))
    half = fam.room_size / 2
    assert (np.abs(poses[..., :2]) < half).all()
    assert (poses[..., 2] >= fam.free_height_min - 1e-6).all()
    assert (poses[..., 2] <= fam.free_height_max + 1e-6).all()
    pitch = np.degrees(poses[..., 4])
    assert (pitch >= fam.pitch_min_deg - 1e-3).all() and (pitch <= fam.pitch_max_deg + 1e-3).all()


def test_rooms_have_coloured_walls_and_shadows():
    kw = {"image_size": 32, "views": 4, "min_objects": 3, "max_objects": 3}
    lit, _ = make_family("rooms", shadows=False, **kw).render_scenes(0, range(4))
    dark, _ = make_family("rooms", shadows=True, **kw).render_scenes(0, range(4))
    assert (lit.max(-1) > 0).mean() > 0.9
    assert (dark.astype(int) <= lit.astype(int)).all()
    assert (dark != lit).any(-1).mean() > 0.005


def test_antialias_option():
    frames, _ = make_family("shepard-metzler", image_size=16, views=2, antialias=2).render_scenes(
        0, [0]
    )
    assert frames.shape == (1, 2, 16, 16, 3)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("cubes", {}, "valid families"),
        ("shepard-metzler", {"colour": 1}, "unknown parameter"),
        ("shepard-metzler", {"parts": 0}, "parts"),
        ("shepard-metzler", {"image_size": 7}, "image_size"),
        ("shepard-metzler", {"image_size": 48}, "image_size"),
        ("shepard-metzler", {"radius_min": 4.0, "radius_max": 3.0}, "radius_min"),
        ("shepard-metzler", {"radius_min": 0.1, "radius_max": 3.0}, "radius_min"),
        ("shepard-metzler", {"antialias": 0}, "antialias"),
        ("shepard-metzler", {"diffuse": -0.1}, "diffuse"),
        ("rooms", {"camera": "orbit"}, "camera"),
        ("rooms", {"min_objects": 3, "max_objects": 2}, "min_objects"),
        ("rooms", {"shapes": ["cube", "torus"]}, "shapes"),
        ("rooms", {"object_size_min": 0.5, "object_size_max": 0.3}, "object_size_min"),
        ("rooms", {"ring_radius": 5.0}, "ring_radius"),
    ],
)
def test_bad_parameters_raise(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_family(name, **params)


def test_shapes_accepts_comma_string():
    fam = make_family("rooms", shapes="sphere, cube")
    assert fam.shapes == ("sphere", "cube") and fam.params()["shapes"] == ["sphere", "cube"]
    assert math.isclose(make_family("rooms", **fam.params()).ring_radius, 1.7)
