"""Camera pose <-> viewpoint vector (thesis eqs 4.1-4.2).

A raw pose is ``(x, y, z, yaw, pitch)`` in world units and radians, the layout of DeepMind's
gqn-datasets ``cameras`` feature. The network sees the 7-d viewpoint vector

    v_hat = (x, y, z, cos(yaw), sin(yaw), cos(pitch), sin(pitch))        (eq 4.2)

in exactly this order (the order the seeds write). DeepMind's own reader builds
``(x, y, z, sin yaw, cos yaw, sin pitch, cos pitch)``; we never use that order, and convert every
dataset from raw poses at load time, so the two cannot be mixed up.

Conventions for cameras that look at the origin (DeepMind's Shepard-Metzler data):
``yaw = atan2(y, -x)`` and ``pitch = atan2(-z, sqrt(x^2 + y^2))``; see :func:`look_at_origin`.
"""

from __future__ import annotations

import torch

POSE_DIM = 5
VIEWPOINT_DIM = 7
VIEWPOINT_ORDER = ("x", "y", "z", "cos_yaw", "sin_yaw", "cos_pitch", "sin_pitch")


def _check_last_dim(t: torch.Tensor, size: int, name: str) -> None:
    if t.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size}, got shape {tuple(t.shape)}")


def pose_to_viewpoint(pose: torch.Tensor) -> torch.Tensor:
    """Raw poses ``(..., 5)`` = (x, y, z, yaw, pitch) -> viewpoints ``(..., 7)`` (eq 4.2)."""
    _check_last_dim(pose, POSE_DIM, "pose")
    position, yaw, pitch = pose[..., :3], pose[..., 3:4], pose[..., 4:5]
    return torch.cat([position, yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin()], dim=-1)


def viewpoint_to_pose(viewpoint: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pose_to_viewpoint`: ``(..., 7)`` -> ``(..., 5)``, angles in (-pi, pi]."""
    _check_last_dim(viewpoint, VIEWPOINT_DIM, "viewpoint")
    position = viewpoint[..., :3]
    yaw = torch.atan2(viewpoint[..., 4:5], viewpoint[..., 3:4])
    pitch = torch.atan2(viewpoint[..., 6:7], viewpoint[..., 5:6])
    return torch.cat([position, yaw, pitch], dim=-1)


def look_at_origin(position: torch.Tensor) -> torch.Tensor:
    """Pose ``(..., 5)`` of cameras at ``position (..., 3)`` looking at the origin.

    Uses DeepMind's convention: ``yaw = atan2(y, -x)``, ``pitch = atan2(-z, sqrt(x^2 + y^2))``.
    """
    _check_last_dim(position, 3, "position")
    x, y, z = position.unbind(-1)
    yaw = torch.atan2(y, -x)
    pitch = torch.atan2(-z, torch.sqrt(x * x + y * y))
    return torch.cat([position, yaw[..., None], pitch[..., None]], dim=-1)


def look_direction(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """Unit viewing direction ``(..., 3)`` of a camera with the given yaw and pitch.

    The inverse of the convention in :func:`look_at_origin`: a camera at ``p`` that looks at the
    origin has direction ``-p / |p|``, and ``yaw = atan2(y, -x)`` makes that direction
    ``(cos(pitch) cos(yaw), -cos(pitch) sin(yaw), sin(pitch))``. Every renderer in :mod:`gqn.data`
    derives camera orientation from this function, so generated poses and images agree.
    """
    cos_p = pitch.cos()
    return torch.stack([cos_p * yaw.cos(), -cos_p * yaw.sin(), pitch.sin()], dim=-1)
