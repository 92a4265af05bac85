"""Viewpoint encoders: what a dataset stores per view -> the vector v the network sees.

A dataset's kind of viewpoint picks its encoder (:func:`viewpoint_encoder`; a store records the
kind in its manifest, ``"camera"`` when unrecorded). Every encoder has ``raw_dim`` (floats it reads
per view), ``dim`` (the size d of v, which models and batches take from here) and ``encode``:

- ``camera`` (:data:`CAMERA`): raw pose (x, y, z, yaw, pitch) -> the 7-d vector below.
- ``time`` (:class:`TimeEncoder`): a timestamp t -> ``(t / T, sin(2^j pi t / T), cos(2^j pi t /
  T) for j = 0 .. F-1)``, d = 1 + 2F (defaults T = 1, F = 3: d = 7). The linear term keeps the
  order of frames, the Fourier features give the network the period at several scales (the
  Consistent GQN's video viewpoints, seed 003).

Camera pose <-> viewpoint vector (thesis eqs 4.1-4.2).

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

import math
from dataclasses import dataclass

import torch

POSE_DIM = 5
CAMERA_DIM = 7


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
    _check_last_dim(viewpoint, CAMERA_DIM, "viewpoint")
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


@dataclass(frozen=True)
class CameraEncoder:
    """Raw camera poses ``(..., 5)`` -> viewpoints ``(..., 7)`` by :func:`pose_to_viewpoint`."""

    kind: str = "camera"
    raw_dim: int = POSE_DIM
    dim: int = CAMERA_DIM

    def encode(self, raw: torch.Tensor) -> torch.Tensor:
        return pose_to_viewpoint(raw)


@dataclass(frozen=True)
class TimeEncoder:
    """Timestamps ``(..., 1)`` -> ``(..., 1 + 2 * frequencies)``: ``t / period`` then
    ``sin(2^j pi t / period), cos(2^j pi t / period)`` for ``j = 0 .. frequencies - 1``."""

    kind: str = "time"
    raw_dim: int = 1
    period: float = 1.0
    frequencies: int = 3

    @property
    def dim(self) -> int:
        return 1 + 2 * self.frequencies

    def encode(self, raw: torch.Tensor) -> torch.Tensor:
        _check_last_dim(raw, self.raw_dim, "timestamp")
        phase = raw / self.period
        scales = 2.0 ** torch.arange(self.frequencies, dtype=raw.dtype, device=raw.device)
        angles = math.pi * phase * scales
        return torch.cat([phase, angles.sin(), angles.cos()], dim=-1)


ViewpointEncoder = CameraEncoder | TimeEncoder
CAMERA = CameraEncoder()
VIEWPOINT_ENCODERS: dict[str, ViewpointEncoder] = {"camera": CAMERA, "time": TimeEncoder()}


def viewpoint_encoder(kind: str) -> ViewpointEncoder:
    """The encoder of a dataset whose viewpoints are of ``kind`` ("camera" or "time")."""
    if kind not in VIEWPOINT_ENCODERS:
        raise ValueError(
            f"unknown viewpoint kind {kind!r}; choose one of {sorted(VIEWPOINT_ENCODERS)}"
        )
    return VIEWPOINT_ENCODERS[kind]


def check_viewpoint_kinds(model_kind: str, data_kind: str, where: str) -> None:
    """ValueError naming both kinds when a model trained on ``model_kind`` viewpoints meets data
    (``where``) whose viewpoints are of ``data_kind``: camera poses and timestamps can have the
    same encoded size, so the size check alone would let them mix silently."""
    if model_kind != data_kind:
        raise ValueError(
            f"the model was trained on {model_kind!r} viewpoints but {where} has {data_kind!r} "
            f"viewpoints; use data of the model's kind (or set model.viewpoint={data_kind} "
            "for a new run)"
        )
