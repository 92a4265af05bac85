"""Per-pixel rays (gqn.models.rays): the geometry must be the renderer's, exactly."""

from __future__ import annotations

import math

import pytest
import torch

from gqn.batch import QueryBatch
from gqn.data.render.camera import camera_basis, pixel_offsets, project_points, ray_directions
from gqn.models import GQN, GQNConfig
from gqn.models.rays import RayMap, camera_axes, plucker_rays
from gqn.viewpoint import look_at_origin, pose_to_viewpoint


def _poses(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    position = torch.randn(n, 3, generator=g)
    position = 3.0 * position / position.norm(dim=1, keepdim=True)
    return look_at_origin(position)


def test_camera_axes_are_the_renderers_basis():
    pose = _poses()
    expected = camera_basis(pose[:, 3], pose[:, 4])
    torch.testing.assert_close(camera_axes(pose_to_viewpoint(pose)), expected)


@pytest.mark.parametrize("size", [3, 8])
def test_ray_directions_are_the_renderers_pixel_rays(size):
    pose = _poses()
    rays = plucker_rays(pose_to_viewpoint(pose), size, size, 40.0)
    d = ray_directions(camera_basis(pose[:, 3], pose[:, 4]), pixel_offsets(size, size, 40.0))
    d = d / d.norm(dim=-1, keepdim=True)  # (n, size*size, 3), row-major
    torch.testing.assert_close(rays[:, :3].flatten(2).transpose(1, 2), d)


def test_moment_is_position_cross_direction_and_constant_along_the_ray():
    pose = _poses()
    v = pose_to_viewpoint(pose)
    rays = plucker_rays(v, 4, 4, 45.0)
    d, m = rays[:, :3], rays[:, 3:]
    o = v[:, :3, None, None].expand_as(d)
    torch.testing.assert_close(m, torch.linalg.cross(o, d, dim=1))
    # any point o + t d of the ray has the same moment: Plücker coordinates name the line
    torch.testing.assert_close(torch.linalg.cross(o + 2.5 * d, d, dim=1), m, atol=1e-5, rtol=0)


def test_a_pixel_sees_the_point_that_projects_into_it():
    """The ray of the pixel a world point projects to passes within half a pixel of it."""
    pose = _poses(1, seed=3)
    size, fov = 16, 45.0
    point = torch.tensor([0.3, -0.2, 0.25])
    col, row = project_points(point, pose[0], size, fov).tolist()
    rays = plucker_rays(pose_to_viewpoint(pose), size, size, fov)[0]
    d, m = rays[:3, int(row), int(col)], rays[3:, int(row), int(col)]
    distance = torch.linalg.cross(point, d).sub(m).norm()  # |p x d - m| = distance of p to line
    pixel = 2 * math.tan(math.radians(fov) / 2) / size * (point - pose[0, :3]).norm()
    assert distance < pixel


def test_the_centre_ray_of_a_look_at_camera_passes_through_the_origin():
    rays = plucker_rays(pose_to_viewpoint(_poses()), 3, 3, 45.0)
    torch.testing.assert_close(rays[:, 3:, 1, 1], torch.zeros(6, 3), atol=1e-5, rtol=0)


def test_broadcast_map_is_the_paper_repetition():
    v = pose_to_viewpoint(_poses())
    out = RayMap("broadcast")(v, 4, 5)
    assert out.shape == (6, 7, 4, 5)
    torch.testing.assert_close(out, v[:, :, None, None].expand(6, 7, 4, 5))
    rays = RayMap("rays", 30.0)(v, 4, 4)
    assert rays.shape == (6, 13, 4, 4)
    torch.testing.assert_close(rays[:, 7:], plucker_rays(v, 4, 4, 30.0))


def test_bad_encoding_fov_and_viewpoint_kind_are_refused():
    with pytest.raises(ValueError, match="pose_encoding"):
        GQNConfig(pose_encoding="plucker")
    with pytest.raises(ValueError, match="fov_deg"):
        GQNConfig(pose_encoding="rays", fov_deg=180.0)
    with pytest.raises(ValueError, match="camera viewpoints"):
        GQNConfig(pose_encoding="rays", viewpoint_dim=5)
    assert RayMap("broadcast", viewpoint_dim=5).channels == 5


def test_gqn_with_rays_conditions_on_the_query_rays():
    torch.manual_seed(0)
    config = GQNConfig(
        image_size=16, r_channels=8, hidden_channels=8, canvas_channels=8, num_steps=2,
        kernel_size=3, pose_encoding="rays", fov_deg=40.0,
    )  # fmt: skip
    model = GQN(config)
    vq = pose_to_viewpoint(_poses(2))
    r = torch.randn(2, 8, 4, 4)
    cond = model.condition(r, vq)
    assert cond.shape == (2, 13 + 8, 4, 4)
    torch.testing.assert_close(cond[:, 7:13], plucker_rays(vq, 4, 4, 40.0))
    x = torch.rand(2, 1, 3, 16, 16)
    r = model.represent(x, pose_to_viewpoint(_poses(2, seed=1))[:, None])
    assert r.shape == (2, 8, 4, 4) and torch.isfinite(r).all()


def test_rays_stay_fp32_under_bf16_autocast_and_a_rays_model_trains_in_bf16():
    """The rays are computed outside autocast: bf16 autocast (precision "bf16", and "auto" on CPUs
    with native bf16) once crashed here (cross of fp32 and bf16) and would blur the pose."""
    v = pose_to_viewpoint(_poses())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rays = plucker_rays(v, 4, 4, 50.0)
    assert rays.dtype == torch.float32
    torch.testing.assert_close(rays, plucker_rays(v, 4, 4, 50.0), rtol=0, atol=0)
    config = GQNConfig(image_size=16, r_channels=8, hidden_channels=4, canvas_channels=4,
                       num_steps=1, pose_encoding="rays")  # fmt: skip
    model = GQN(config)
    b = 2
    batch = QueryBatch.full_context(
        torch.rand(b, 1, 3, 16, 16), v[:b, None], torch.rand(b, 1, 3, 16, 16), v[2:4, None]
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(batch, sigma=0.7).loss
    loss.backward()
    assert torch.isfinite(loss)
