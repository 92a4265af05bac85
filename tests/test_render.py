"""Renderer: geometry, shading, shadows, textures, anti-aliasing, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gqn.data.render import (
    RenderSettings,
    SceneBuilder,
    camera_basis,
    pixel_offsets,
    project_points,
    ray_directions,
    render,
    rotation_z,
    stack_scenes,
)
from gqn.viewpoint import look_at_origin, look_direction

FLAT = {"ambient": 1.0, "diffuse": 0.0}


def _render(builders, poses, light=(0.0, 0.0, 5.0), **settings):
    prims = stack_scenes(builders)
    poses = torch.as_tensor(poses, dtype=torch.float32)
    lights = torch.tensor([light] * len(builders), dtype=torch.float32)
    return render(prims, poses, lights, RenderSettings(**settings)).numpy()


def test_centre_ray_is_look_direction():
    pose = look_at_origin(torch.tensor([[2.0, -1.0, 1.5], [-0.3, 0.2, -3.0]], dtype=torch.float64))
    basis = camera_basis(pose[:, 3], pose[:, 4])
    offsets = pixel_offsets(4, 4, 50.0, device=None).double()
    rays = ray_directions(basis, offsets).reshape(2, 4, 4, 3)
    centre = rays[:, 1:3, 1:3].reshape(2, 4, 3).mean(1)
    centre = centre / centre.norm(dim=-1, keepdim=True)
    expected = -pose[:, :3] / pose[:, :3].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(centre, expected)
    torch.testing.assert_close(centre, look_direction(pose[:, 3], pose[:, 4]))
    # right axis is horizontal, up axis points up
    assert torch.allclose(basis[:, 0, 2], torch.zeros(2, dtype=torch.float64))
    assert bool((basis[:, 1, 2] > 0).all())


def test_sphere_renders_at_hand_projected_pixel():
    # camera at (-3, 0, 0) looking along +x: right = -y, up = +z; fov 90 -> tan = 1
    b = SceneBuilder()
    b.sphere((0.0, -0.75, 0.6), 0.25, (1, 1, 1))
    img = _render([b], [[[-3.0, 0.0, 0.0, 0.0, 0.0]]], image_size=64, fov_deg=90.0, **FLAT)
    mask = img[0, 0].sum(-1) > 0
    rows, cols = np.nonzero(mask)
    assert mask.sum() > 5
    assert abs(cols.mean() + 0.5 - (1 + 0.75 / 3) * 32) < 0.75
    assert abs(rows.mean() + 0.5 - (1 - 0.6 / 3) * 32) < 0.75
    camera = torch.tensor([-3.0, 0, 0, 0, 0])
    pix = project_points(torch.tensor([0.0, -0.75, 0.6]), camera, 64, 90.0)
    torch.testing.assert_close(pix, torch.tensor([40.0, 25.6]))


def _floor_and_ball() -> SceneBuilder:
    b = SceneBuilder()
    b.box((0, 0, -0.1), (3, 3, 0.1), (0.8, 0.8, 0.8))
    b.sphere((0, 0, 0.6), 0.3, (1, 0, 0))
    return b


def test_shadow_darkens_floor_under_sphere():
    pose = look_at_origin(torch.tensor([[[3.0, 0.0, 2.0]]]))
    kw = {"image_size": 64, "fov_deg": 60.0, "ambient": 0.3, "diffuse": 0.7}
    lit = _render([_floor_and_ball()], pose, light=(0, 0, 3.0), shadows=False, **kw)[0, 0]
    dark = _render([_floor_and_ball()], pose, light=(0, 0, 3.0), shadows=True, **kw)[0, 0]
    # floor at (-0.25, 0, 0) lies in the shadow (behind the ball, seen past it)
    col, row = project_points(torch.tensor([-0.3, 0.0, 0.0]), pose[0, 0], 64, 60.0).long().tolist()
    assert dark[row, col].sum() < 0.6 * lit[row, col].sum()
    # floor far from the ball is unaffected; shadows only ever darken
    col, row = project_points(torch.tensor([1.5, 1.0, 0.0]), pose[0, 0], 64, 60.0).long().tolist()
    assert (dark[row, col] == lit[row, col]).all()
    assert (dark.astype(int) <= lit.astype(int)).all()
    assert (dark != lit).any(-1).sum() > 20


def test_texture_lookup_shows_face_image():
    tex = torch.zeros(1, 6, 2, 2, 3)
    tex[0, :, :, :, 1] = 1.0  # every face green ...
    tex[0, 1] = torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]], [[0, 0, 1.0], [1.0, 0, 0]]])  # +x checker
    b = SceneBuilder()
    b.box((0, 0, 0), (0.5, 0.5, 0.5), (1, 1, 1), texture=0)
    poses = torch.tensor([[[3.0, 0.0, 0.0, math.pi, 0.0]]])  # looks along -x at the +x face
    prims = stack_scenes([b])
    img = render(
        prims,
        poses,
        torch.tensor([[5.0, 0, 0]]),
        RenderSettings(image_size=32, fov_deg=40.0, **FLAT),
        textures=tex,
    )[0, 0].numpy()
    face = img[img.sum(-1) > 0]
    red = (face == [255, 0, 0]).all(-1).sum()
    blue = (face == [0, 0, 255]).all(-1).sum()
    assert red > 20 and blue > 20 and red + blue == len(face)
    untextured = render(
        prims,
        poses,
        torch.tensor([[5.0, 0, 0]]),
        RenderSettings(image_size=32, fov_deg=40.0, **FLAT),
    )[0, 0].numpy()
    assert set(map(tuple, untextured[untextured.sum(-1) > 0])) == {(255, 255, 255)}


def test_antialias_blends_edges():
    b = SceneBuilder()
    b.sphere((0, 0, 0), 0.8, (1, 1, 1))
    pose = look_at_origin(torch.tensor([[[0.0, -3.0, 0.5]]]))
    hard = _render([b], pose, image_size=32, **FLAT)
    soft = _render([b], pose, image_size=32, antialias=3, **FLAT)
    assert set(np.unique(hard)) == {0, 255}
    middle = ((soft > 0) & (soft < 255)).all(-1).sum()
    assert middle > 10
    assert abs(int((soft > 127).sum()) - int((hard > 127).sum())) < 0.1 * (hard > 127).sum()


def test_quadric_silhouettes():
    """A cone narrows upwards, a cylinder does not; a capsule is rounded at its ends."""
    pose = [[[-4.0, 0.0, 0.0, 0.0, 0.0]]]
    widths = {}
    for shape in ("cone", "cylinder", "capsule"):
        b = SceneBuilder()
        if shape == "capsule":
            b.capsule((0, 0, 0), 0.5, 0.5, (1, 1, 1))
        else:
            getattr(b, shape)((0, 0, 0), 0.5, 0.8, (1, 1, 1), rotation_z(0.3))
        mask = _render([b], pose, image_size=64, fov_deg=45.0, **FLAT)[0, 0].sum(-1) > 0
        rows = np.nonzero(mask.any(1))[0]
        top, bottom = rows.min() + 2, rows.max() - 2
        widths[shape] = (mask[top].sum(), mask[bottom].sum(), mask[(top + bottom) // 2].sum())
    assert widths["cone"][0] < 0.4 * widths["cone"][1]
    assert abs(int(widths["cylinder"][0]) - int(widths["cylinder"][1])) <= 1
    assert widths["capsule"][0] < 0.8 * widths["capsule"][2]
    assert widths["cylinder"][0] == widths["cylinder"][2]


def test_lambert_shading_depends_on_light():
    b = SceneBuilder()
    b.box((0, 0, 0), (0.5, 0.5, 0.5), (1, 1, 1))
    pose = [[[3.0, 0.0, 0.0, math.pi, 0.0]]]
    facing = _render([b], pose, light=(5.0, 0, 0), image_size=16)[0, 0, 8, 8]
    grazing = _render([b], pose, light=(0.5, 0, 5.0), image_size=16)[0, 0, 8, 8]
    assert (facing == 255).all()
    assert grazing.max() < facing.max() and grazing.min() >= round(0.35 * 255)


def test_deterministic_and_batch_independent():
    b1, b2 = _floor_and_ball(), SceneBuilder()
    b2.cone((0.2, 0.1, 0.3), 0.3, 0.3, (0, 1, 1))
    b2.box((0, 0, -0.1), (2, 2, 0.1), (0.5, 0.2, 0.9), rotation_z(0.4))
    b2.sphere((-0.5, 0.4, 0.2), 0.2, (1, 1, 0))
    poses = look_at_origin(torch.tensor([[[2.0, 1.0, 1.5], [-1.0, 2.0, 1.0]]] * 2))
    kw = {"image_size": 32, "shadows": True, "antialias": 2, "chunk_elements": 4096}
    alone = _render([b2], poses[:1], **kw)
    both = _render([b1, b2], poses, **kw)
    again = _render([b1, b2], poses, **kw)
    assert np.array_equal(both, again)
    assert np.array_equal(alone[0], both[1])
    assert not np.array_equal(both[0], both[1])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="fov_deg"):
        RenderSettings(fov_deg=180)
    with pytest.raises(ValueError, match="antialias"):
        RenderSettings(antialias=0)
    with pytest.raises(ValueError, match="half-extents"):
        SceneBuilder().box((0, 0, 0), (1, 0, 1), (1, 1, 1))
    prims = stack_scenes([_floor_and_ball()])
    with pytest.raises(ValueError, match="disagree"):
        render(prims, torch.zeros(2, 1, 5), torch.zeros(2, 3), RenderSettings(image_size=8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    pose = look_at_origin(torch.tensor([[[3.0, 0.5, 2.0]]]))
    cpu = render(
        stack_scenes([_floor_and_ball()]),
        pose,
        torch.tensor([[0.5, 0, 3.0]]),
        RenderSettings(image_size=32, shadows=True),
    )
    gpu = render(
        stack_scenes([_floor_and_ball()]),
        pose,
        torch.tensor([[0.5, 0, 3.0]]),
        RenderSettings(image_size=32, shadows=True),
        device="cuda",
    )
    assert gpu.device.type == "cuda"
    assert (cpu.int() - gpu.cpu().int()).abs().max() <= 1


@pytest.mark.parametrize("face", range(6))
def test_textures_are_not_mirrored(face):
    """Each face seen from outside shows its texture's left half on the image's left."""
    tex = torch.zeros(1, 6, 4, 4, 3)
    tex[0, :, :, :2, 0] = 1.0  # left half red
    tex[0, :, :, 2:, 2] = 1.0  # right half blue
    tex[0, :, :2, :, 1] = 1.0  # top half has green added
    b = SceneBuilder()
    b.box((0, 0, 0), (0.5, 0.5, 0.5), (1, 1, 1), texture=0)
    axis, sign = face // 2, 1.0 if face % 2 else -1.0
    position = [0.0, 0.0, 0.0]
    position[axis] = 3.0 * sign
    if axis == 2:  # from above/below, tilt slightly so yaw is defined: +y is up on screen
        position[1] = -1e-3 * sign
    pose = look_at_origin(torch.tensor([[position]]))
    img = render(
        stack_scenes([b]),
        pose,
        torch.tensor([position]),
        RenderSettings(image_size=32, fov_deg=30.0, **FLAT),
        textures=tex,
    )[0, 0].numpy()
    assert img[12, 10].tolist() == [255, 255, 0] and img[12, 21].tolist() == [0, 255, 255]
    assert img[20, 10].tolist() == [255, 0, 0] and img[20, 21].tolist() == [0, 0, 255]
