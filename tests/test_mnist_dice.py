"""MNIST dice: determinism, digits, face visibility against rendered pixels, splits, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gqn.cli import main
from gqn.data.dataset import OnlineSceneDataset
from gqn.data.render import RenderSettings, render, stack_scenes
from gqn.data.samplers import StepPlan
from gqn.data.scenes import make_family, scene_rng
from gqn.data.scenes.dice_views import (
    SIDES,
    DiceFaces,
    face_areas,
    hidden_face_targets,
    split_views,
)
from gqn.data.scenes.mnist_dice import faces_of, mnist_digits
from gqn.data.store import SceneStore

TINY = {"image_size": 16, "views": 6}
# pure colours no wall or floor can take (their saturation is < 1): one per face of the die
FACE_COLORS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], float)


def test_digit_set_and_distinct_digits_per_scene():
    ink, labels = mnist_digits()
    assert ink.shape == (100, 28, 28) and 0 <= ink.min() < ink.max() <= 1
    assert labels.tolist() == [i % 10 for i in range(100)]
    fam = make_family("mnist-dice", digits=6, **TINY)
    for index in range(10):
        faces = fam.faces(0, index)
        assert sorted(faces.digits.tolist()) == list(range(6))  # 6 of 6: all distinct
        assert faces.labels.tolist() == labels[faces.digits].tolist()
    many = [make_family("mnist-dice", **TINY).faces(1, i) for i in range(10)]
    assert all(len(set(f.labels.tolist())) == 6 for f in many)  # six different numerals
    assert max(f.digits.max() for f in many) >= 10  # from the whole set


def test_faces_are_deterministic_and_match_the_rendered_poses():
    fam = make_family("mnist-dice", **TINY)
    a, b = fam.faces(3, 5), make_family("mnist-dice", **TINY).faces(3, 5)
    assert np.array_equal(a.digits, b.digits) and np.array_equal(a.area, b.area)
    assert not np.array_equal(a.area, fam.faces(3, 6).area)
    spec, die = fam.draw(scene_rng("mnist-dice", 3, 5))
    _, poses = fam.render_scenes(3, [5])
    np.testing.assert_allclose(poses[0], spec.poses, atol=1e-6)
    assert np.array_equal(die.digits, a.digits)
    assert a.seen.shape == (6, 6) and not a.seen[:, 4].any()  # the bottom lies on the floor
    assert (a.seen[:, list(SIDES)].sum(1) >= 1).all()  # every view sees a side of the die


def test_seen_faces_agree_with_the_rendered_pixels():
    """Paint face f of the die a pure colour, render unlit: the fraction of pixels of that colour
    is the face's projected area, zero exactly where the face is not front-facing or in frame."""
    fam = make_family("mnist-dice", image_size=32, views=8, cube_region=0.9)
    settings = RenderSettings(image_size=32, fov_deg=fam.fov_deg, ambient=1.0, diffuse=0.0)
    for index in range(2):
        spec, die = fam.draw(scene_rng(fam.name, 0, index))
        textures = spec.textures.copy()
        textures[0] = FACE_COLORS[:, None, None, :]
        frames = render(
            stack_scenes([spec.builder]),
            torch.from_numpy(spec.poses[None]).float(),
            torch.from_numpy(spec.light[None]).float(),
            settings,
            torch.from_numpy(textures),
        )[0].numpy()
        pixels = (frames[:, :, :, None, :] == (255 * FACE_COLORS).astype(np.uint8)).all(-1)
        measured = pixels.mean((1, 2))  # (V, 6)
        area = face_areas(die.center, die.half, die.rotation, spec.poses, fam.fov_deg)
        np.testing.assert_allclose(measured, area, atol=0.01)  # edge pixels
        assert ((measured > 0) <= (area > 0)).all()
        seen = fam.faces(0, index).seen
        assert (measured[seen] > 0.5 * fam.min_face_area).all()
        assert (measured[~seen] < 2 * fam.min_face_area).all()


# views x faces (-x, +x, -y, +y, bottom, top), areas; view 2 shows a sliver of +y (face 3)
AREA = 0.1 * np.array(
    [
        [1, 0, 1, 0, 0, 1],
        [0, 1, 1, 0, 0, 1],
        [1, 1, 0, 0.01, 0, 1],
        [0, 0, 0, 1, 0, 1],
        [1, 0, 0, 1, 0, 1],
        [0, 1, 0, 1, 0, 1],
    ]
)
TABLE = DiceFaces(np.arange(6), np.arange(6), AREA, AREA >= 0.005)


def test_hidden_face_split_hides_one_side_from_the_context():
    rng = np.random.default_rng(0)
    seen, hidden = TABLE.seen, TABLE.hidden
    faces = set()
    for _ in range(30):
        s = split_views(TABLE, "hidden-face", 2, 2, rng)
        assert len(s.context) == 2 and len(s.target) == 2 and s.face in SIDES
        assert hidden[s.context, s.face].all() and seen[s.target, s.face].all()
        assert not set(s.context) & set(s.target)
        assert s.face != 3 or s.context.tolist() == [0, 1]  # never view 2 (a sliver of +y)
        faces.add(s.face)
    assert faces == {0, 1, 2, 3}
    assert {split_views(TABLE, "hidden-face", 1, 3, rng).face for _ in range(20)} == {0, 1, 3}
    sides = [split_views(TABLE, "hidden-face", 2, 1, rng, context_sides=3) for _ in range(10)]
    assert all(seen[s.context][:, :4].any(0).sum() == 3 for s in sides)
    r = split_views(TABLE, "random", 3, 3, rng)
    assert r.face is None and sorted([*r.context, *r.target]) == list(range(6))
    t = hidden_face_targets(TABLE, [0, 1], 3, rng)
    assert t.face == 3 and t.target.tolist() == [3, 4, 5]


def test_hidden_face_splits_of_rendered_scenes():
    fam = make_family("mnist-dice", **{**TINY, "views": 12})
    rng = np.random.default_rng(1)
    for index in range(5):
        faces = fam.faces(0, index)
        s = split_views(faces, "hidden-face", 3, 3, rng)
        assert s.face in SIDES and faces.seen[s.target, s.face].all()
        assert (faces.area[s.context, s.face] == 0).all()
        assert faces.seen[s.context][:, list(SIDES)].any(0).sum() <= 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: split_views(TABLE, "fourth-face", 2, 2, r), "unknown split 'fourth-face'"),
        (lambda r: split_views(TABLE, "random", 4, 3, r), "contexts \\+ targets <= views"),
        (lambda r: split_views(TABLE, "hidden-face", 5, 1, r), "no side face is hidden from 5"),
        (lambda r: split_views(TABLE, "hidden-face", 2, 1, r, context_sides=4), "context_sides"),
        (lambda r: split_views(TABLE, "hidden-face", 1, 1, r, context_sides=3), "saw 3 sides"),
        (lambda r: hidden_face_targets(TABLE, [0, 1, 3], 1, r), "no face hidden from the context"),
        (lambda r: hidden_face_targets(TABLE, [0, 2], 1, r), "no face hidden from the context"),
        (lambda r: hidden_face_targets(TABLE, [0, 1], 4, r), "fewer than 4 views"),
    ],
)
def test_bad_splits_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.random.default_rng(0))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"digits": 5}, "digits must be in 6..100"),
        ({"digits": 101}, "digits must be in 6..100"),
        ({"wall_patterns": "plain,marble"}, "wall_patterns"),
        ({"ring_radius": 0.8}, "ring_radius"),
        ({"cube_size_min": 0.8, "cube_size_max": 0.5}, "cube_size_min"),
        ({"min_face_area": 0.0}, "min_face_area"),
    ],
)
def test_bad_parameters_raise(params, match):
    with pytest.raises(ValueError, match=match):
        make_family("mnist-dice", **params)


def test_generate_store_faces_of_and_online(tmp_path, capsys):
    out = tmp_path / "dice"
    argv = ["data", "generate", "mnist-dice", str(out), "--scenes", "2", "--size", "16"]
    assert main([*argv, "--views", "4", "--digits", "10", "--seed", "3"]) == 0
    fam = make_family("mnist-dice", image_size=16, views=4, digits=10)
    store = SceneStore(out)
    faces = faces_of(store, 1)
    assert np.array_equal(faces.area, fam.faces(3, 1).area)
    assert main(["data", "generate", "mnist-dice", str(tmp_path / "x"), "--digits", "3"]) == 2
    assert "digits must be in 6..100" in capsys.readouterr().err
    rooms = tmp_path / "rooms"
    assert main(["data", "generate", "rooms", str(rooms), "--scenes", "1", "--size", "8"]) == 0
    with pytest.raises(ValueError, match="not MNIST dice"):
        faces_of(SceneStore(rooms), 0)
    ds = OnlineSceneDataset(fam, StepPlan(2, min_context=2, max_context=2, num_targets=2))
    _, context_v, _, target_images, _, _ = next(iter(ds))
    assert target_images.shape == (2, 2, 3, 16, 16) and context_v.shape == (2, 2, 7)
