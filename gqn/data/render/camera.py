"""Pinhole cameras oriented by the pose's yaw and pitch (:mod:`gqn.viewpoint` convention).

The forward axis is ``look_direction(yaw, pitch)``; the camera has no roll, so its right axis is
``forward x z / |forward x z| = (-sin yaw, -cos yaw, 0)`` (well defined even looking straight
up or down) and its up axis is ``right x forward``. Pixel ``(row, col)`` of an ``H x W`` image
looks along ``forward + x * right + y * up`` with ``x = (2 (col + 0.5) / W - 1) tan(fov / 2)``
and ``y = (1 - 2 (row + 0.5) / H) tan(fov / 2)`` (square pixels; ``fov`` spans the width).
"""

from __future__ import annotations

import math

import torch

from gqn.viewpoint import look_direction


def camera_basis(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """``(n,)`` yaw, pitch -> ``(n, 3, 3)`` rows (right, up, forward), world coordinates."""
    forward = look_direction(yaw, pitch)
    zero = torch.zeros_like(yaw)
    right = torch.stack([-yaw.sin(), -yaw.cos(), zero], dim=-1)
    up = torch.linalg.cross(right, forward)
    return torch.stack([right, up, forward], dim=-2)


def pixel_offsets(height: int, width: int, fov_deg: float, device=None) -> torch.Tensor:
    """``(H * W, 3)`` camera-space directions ``(x, y, 1)`` of the pixel centres, row-major."""
    scale = math.tan(math.radians(fov_deg) / 2)
    aspect = height / width
    cols = 2 * (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width - 1
    rows = 1 - 2 * (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    y, x = torch.meshgrid(rows * scale * aspect, cols * scale, indexing="ij")
    return torch.stack([x, y, torch.ones_like(x)], dim=-1).reshape(-1, 3)


def ray_directions(basis: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``(n, 3, 3)`` bases x ``(R, 3)`` pixel offsets -> ``(n, R, 3)`` world directions.

    Not normalised (length ``|(x, y, 1)|``): the renderer measures ``t`` in these units.
    """
    d = (
        offsets[None, :, 0:1] * basis[:, None, 0]
        + offsets[None, :, 1:2] * basis[:, None, 1]
        + offsets[None, :, 2:3] * basis[:, None, 2]
    )
    return d


def project_points(points: torch.Tensor, pose: torch.Tensor, size: int, fov_deg: float):
    """Pixel coordinates ``(..., 2)`` (col, row; continuous, pixel centres at +0.5) of world
    ``points (..., 3)`` seen by cameras ``pose (..., 5)`` in a ``size x size`` image."""
    basis = camera_basis(pose[..., 3], pose[..., 4])
    rel = points - pose[..., :3]
    cam = (basis * rel[..., None, :]).sum(-1)
    scale = math.tan(math.radians(fov_deg) / 2)
    x = cam[..., 0] / cam[..., 2] / scale
    y = cam[..., 1] / cam[..., 2] / scale
    return torch.stack([(x + 1) * size / 2, (1 - y) * size / 2], dim=-1)
