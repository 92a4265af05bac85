"""Where the points of a query camera's rays land in other cameras: the pinhole of
:mod:`gqn.data.render.camera`, from the cos/sin viewpoints (m, 7) of :mod:`gqn.viewpoint`, in
``F.grid_sample``'s coordinates. The projective GQN (:mod:`gqn.models.projective`) reads its
context views there."""

from __future__ import annotations

import math

import torch

from gqn.models.rays import camera_axes, cell_directions

MIN_DEPTH = 1e-3  # points closer to a context camera's image plane than this are not seen


def pinhole(cam: torch.Tensor, fov_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera coordinates (..., 3) (right, up, forward) -> (grid (..., 2), seen (...) bool).
    ``grid`` is (x, y) in F.grid_sample's convention (align_corners False: -1 and 1 are the
    image's left/top and right/bottom edges); a point is seen when it is in front of the camera
    and inside its image."""
    depth = cam[..., 2]
    scale = math.tan(math.radians(fov_deg) / 2)
    in_front = depth > MIN_DEPTH
    flip = cam.new_tensor([1.0, -1.0]) / scale  # image y grows downwards
    grid = cam[..., :2] / depth.clamp(min=MIN_DEPTH)[..., None] * flip
    seen = in_front & (grid.abs().amax(-1) <= 1)
    return grid, seen


def project_rays(
    query: torch.Tensor, size: int, depths: torch.Tensor, viewpoint: torch.Tensor, fov_deg: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The points at depths t (D,) on the rays of a size x size grid of the query cameras
    (m, 7), o + t (x right + y up + forward) with cells row-major, seen by the cameras
    ``viewpoint`` (m, k, 7) -> :func:`pinhole`'s (grid (m, k, size^2, D, 2), seen (m, k, size^2,
    D)). Per ray, not per point: the camera coordinates A (o - c) + t A dir are linear in t."""
    axes = camera_axes(viewpoint.flatten(0, 1)).unflatten(0, viewpoint.shape[:2])  # (m, k, 3, 3)
    directions = cell_directions(query, size, size, fov_deg)  # (m, R, 3)
    start = torch.einsum("mkij,mkj->mki", axes, query[:, None, :3] - viewpoint[..., :3])
    step = torch.einsum("mkij,mrj->mkri", axes, directions)  # (m, k, R, 3)
    cam = start[:, :, None, None] + depths[:, None] * step[:, :, :, None]
    return pinhole(cam, fov_deg)
