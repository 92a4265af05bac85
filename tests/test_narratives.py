"""Narratives (seed 003 §4.1): each story's rule, determinism, the store round trip,
anti-aliasing, the readout of facts from frames, and bad parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gqn.cli import main
from gqn.data.dataset import OnlineSceneDataset, SceneDataset
from gqn.data.render.shapes2d import coverage, draw_shapes
from gqn.data.samplers import StepPlan
from gqn.data.scenes import make_family
from gqn.data.scenes.narratives import FIRST_VISIT_BY, STOP_CLEARANCE
from gqn.data.store import SceneStore
from gqn.eval.narratives import reaction_colors, story_of, visit_order
from gqn.viewpoint import TimeEncoder

NAMES = ("traveling-salesman", "color-reaction", "dag-chase")
SCENES = range(40)


def gap(story, t, i, j):
    """Gap between the outlines' bounding circles of shapes i and j at frame t."""
    d = np.linalg.norm(story.center[t, i] - story.center[t, j])
    return d - story.radius[i] - story.radius[j]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_from_seed_and_index(name):
    fam = make_family(name, image_size=16)
    frames, poses = fam.render_scenes(3, [4, 7])
    again, _ = fam.render_scenes(3, [7])
    assert frames.shape == (2, fam.frames, 16, 16, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[1], again[0])
    assert not np.array_equal(frames[0], frames[1])
    assert not np.array_equal(fam.render_scenes(4, [7])[0], again)
    assert fam.story(3, 7).truth == fam.story(3, 7).truth
    np.testing.assert_allclose(poses[0, :, 0], np.linspace(0, 1, fam.frames), atol=1e-6)
    assert not poses[..., 1:].any()


def test_traveling_salesman_visits_each_shape_once_in_the_drawn_order():
    fam = make_family("traveling-salesman")
    assert fam.arrivals() == [0, 5, 10, 15, 20]  # F6, F11, F16, F21 as in figure 3
    for i in SCENES:
        s = fam.story(0, i)
        order, arrivals = s.truth["visit_order"], s.truth["arrival_frames"]
        assert sorted(order) == [1, 2, 3, 4] and arrivals[0] <= FIRST_VISIT_BY
        np.testing.assert_array_equal(s.center[:, 1:], s.center[:1, 1:].repeat(21, 0))
        for a, k in zip(arrivals, order, strict=True):
            assert abs(gap(s, a, 0, k)) < 1e-9  # touches the shape it visits ...
            for j in set(range(1, 5)) - {k}:  # ... and no other
                assert gap(s, a, 0, j) >= STOP_CLEARANCE - 1e-9
        steps = np.linalg.norm(np.diff(s.center[:, 0], axis=0), axis=-1)
        assert (steps > 0).all()  # the salesman moves every frame


def test_color_reaction_changes_colour_exactly_at_frame_7():
    fam = make_family("color-reaction", shapes=3)
    for i in SCENES:
        s = fam.story(0, i)
        t = s.truth
        assert t["change_frame"] == 6  # 0-based: frames 1-6 before, 7-12 after
        assert (s.color[:6, 1] == t["color_before"]).all()
        assert (s.color[6:, 1] == t["reaction_color"]).all()
        assert t["reaction_color"] not in s.color[0]
        assert (s.color[:, [0, 2]] == s.color[0, [0, 2]]).all()
        assert abs(gap(s, 5, 0, 1)) < 1e-9 and gap(s, 0, 0, 1) >= 0.25 - 1e-9
        np.testing.assert_array_equal(s.center[5:], s.center[5:6].repeat(7, 0))
        assert (np.linalg.norm(np.diff(s.center[:6, 0], axis=0), axis=-1) > 0).all()


def test_dag_chase_graph_is_acyclic_and_chasers_close_in():
    fam = make_family("dag-chase", shapes=5)
    for i in SCENES:
        s = fam.story(0, i)
        target, order = s.truth["target"], s.truth["order"]
        assert target.count(-1) == 1 and target[order[0]] == -1
        rank = {shape: r for r, shape in enumerate(order)}
        for shape, t in enumerate(target):
            assert t == -1 or rank[t] < rank[shape]  # edges point back: no cycle
        for shape, t in enumerate(target):
            if t == -1:
                continue
            for f in range(1, fam.frames):
                before = np.linalg.norm(s.center[f - 1, shape] - s.center[f - 1, t])
                after = np.linalg.norm(s.center[f, shape] - s.center[f - 1, t])
                touch = s.radius[shape] + s.radius[t]
                assert after <= before + 1e-9  # never away from the target ...
                assert after < before or before <= touch + 1e-9  # ... and closer until touching
                assert after >= min(before, touch) - 1e-9  # never through it
        moved = np.linalg.norm(s.center[-1] - s.center[0], axis=-1)
        assert (moved > 0).all()  # every shape moves


def test_round_trip_through_the_store(tmp_path, capsys):
    out = tmp_path / "ts"
    argv = ["data", "generate", "traveling-salesman", str(out), "--scenes", "3"]
    argv += ["--size", "16", "--frames", "9", "--shard-size", "2"]
    assert main(argv) == 0
    store = SceneStore(out)
    fam = make_family("traveling-salesman", image_size=16, frames=9)
    assert store.viewpoint == "time" and store.views == 9
    frames, poses = fam.render_scenes(0, range(3))
    for i in range(3):
        f, p = store.read(i)
        np.testing.assert_array_equal(f, frames[i])
        np.testing.assert_array_equal(p, poses[i])
        assert story_of(store, i).truth == fam.story(0, i).truth
    assert isinstance(SceneDataset(out).encoder, TimeEncoder)
    sheet = tmp_path / "sheet.png"
    assert main(["data", "show", str(out), "--views", "9", "--out", str(sheet)]) == 0


def test_story_of_refuses_other_families(tmp_path):
    out = tmp_path / "sm"
    assert main(["data", "generate", "shepard-metzler", str(out), "--scenes", "1"]) == 0
    with pytest.raises(ValueError, match="not a narrative"):
        story_of(SceneStore(out), 0)


def test_edges_are_anti_aliased_and_coverage_matches_area():
    r = 0.3
    cov = coverage(torch.tensor([1]), torch.tensor([[0.47, 0.52]]), torch.tensor([r]), 32)
    assert abs(cov.sum().item() - math.pi * (r * 32) ** 2) < 0.5  # analytic coverage
    image = draw_shapes(
        torch.tensor([[2]]),
        torch.tensor([[[[0.5, 0.5]]]]),
        torch.tensor([[0.3]]),
        torch.tensor([[[[1.0, 1.0, 1.0]]]]),
        16,
    )
    values = set(image.flatten().tolist())
    assert {0, 255} <= values and len(values - {0, 255}) >= 4  # the triangle's edge pixels


def test_readout_recovers_the_truth_from_frames():
    ts = make_family("traveling-salesman")
    frames, _ = ts.render_scenes(0, range(20))
    for i in range(20):
        assert visit_order(frames[i], ts.story(0, i)) == ts.story(0, i).truth["visit_order"]
    video = frames[0].copy()
    arrivals = ts.story(0, 0).truth["arrival_frames"]
    video[arrivals[2]] = video[arrivals[0]]  # an inconsistent video revisits its first shape
    order = visit_order(video, ts.story(0, 0))
    assert order[2] == order[0] and sorted(order) != [1, 2, 3, 4]
    cr = make_family("color-reaction")
    frames, _ = cr.render_scenes(0, range(20))
    for i in range(20):
        t = cr.story(0, i).truth
        assert (
            reaction_colors(frames[i], cr.story(0, i))
            == [t["color_before"]] * 6 + [t["reaction_color"]] * 6
        )
    black = np.zeros((21, 32, 32, 3), np.uint8)
    assert visit_order(black, ts.story(0, 0)) == [-1] * 4


@pytest.mark.parametrize(
    "name, params, word",
    [
        ("traveling-salesman", {"shapes": 13, "sizes": (0.03,)}, "shapes=13 .* palette"),
        ("color-reaction", {"shapes": 12, "sizes": (0.03,)}, "shapes=12 .* palette"),  # + 1
        ("dag-chase", {"frames": 0}, "frames"),
        ("color-reaction", {"frames": 3}, "frames"),
        ("traveling-salesman", {"frames": 23}, "frames"),  # first visit after frame 6
        ("traveling-salesman", {"frames": 4}, "frames"),
        ("dag-chase", {"sizes": (0.2, 0.25), "shapes": 6}, "sizes"),
        ("dag-chase", {"sizes": (0.05,), "image_size": 16}, "sizes"),
        ("dag-chase", {"sizes": (0.3,)}, "sizes"),
        ("dag-chase", {"chase_speed": 0.0}, "chase_speed"),
    ],
)
def test_bad_parameters_name_the_parameter(name, params, word):
    with pytest.raises(ValueError, match=word) as err:
        make_family(name, **params)
    assert "\n" not in str(err.value)


def test_cli_bad_parameter_is_one_line_exit_2(tmp_path, capsys):
    argv = ["data", "generate", "traveling-salesman", str(tmp_path / "x"), "--shapes", "13"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "shapes" in err and "palette" in err and "Traceback" not in err


def test_online_batches_encode_timestamps():
    fam = make_family("color-reaction", image_size=16)
    ds = OnlineSceneDataset(fam, StepPlan(2, min_context=2, max_context=2, num_targets=3))
    _, context_v, _, target_images, target_v, _ = next(iter(ds))
    assert target_images.shape == (2, 3, 3, 16, 16) and context_v.shape == (2, 2, 7)
    times = torch.cat([context_v, target_v], 1)[..., 0]  # the encoder's linear term is t
    frames = times * (fam.frames - 1)
    torch.testing.assert_close(frames, frames.round())
