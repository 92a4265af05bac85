"""Orbit animations: the camera circling the scene, rendered by a model from one r.

The orbit lies at the data's radius: the mean distance of the context cameras to the origin and
their mean height z (the vertical axis of :func:`gqn.viewpoint.look_at_origin`), yaw over
[0, 2 pi). Every frame uses the same prior noise (a generator reseeded per frame), so the sampled
scene stays consistent from frame to frame.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from PIL import Image

from gqn.models.base import SceneModel
from gqn.viewpoint import look_at_origin, pose_to_viewpoint
from gqn.viz.grids import to_uint8, upscale


def orbit_poses(context_poses: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(num_frames, 5) raw poses circling the origin, from context poses (k, 5)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    position = context_poses[:, :3].double()
    distance = float(position.norm(dim=-1).mean())
    height = float(position[:, 2].mean())
    height = max(min(height, 0.95 * distance), -0.95 * distance)
    ring = math.sqrt(distance * distance - height * height)
    yaw = torch.arange(num_frames, dtype=torch.float64) * (2 * math.pi / num_frames)
    xyz = torch.stack([ring * yaw.cos(), ring * yaw.sin(), torch.full_like(yaw, height)], -1)
    return look_at_origin(xyz).float()


@torch.no_grad()
def render_orbit(
    model: SceneModel,
    context_images: torch.Tensor,
    context_poses: torch.Tensor,
    num_frames: int = 36,
    seed: int = 0,
) -> torch.Tensor:
    """(num_frames, 3, s, s) prior mean images along the orbit of one scene's context views
    (k, 3, s, s) with raw poses (k, 5); r is computed once."""
    device = next(model.parameters()).device
    vp = pose_to_viewpoint(context_poses.float()).to(device)
    r = model.represent(context_images[None].to(device), vp[None])
    queries = pose_to_viewpoint(orbit_poses(context_poses, num_frames)).to(device)
    frames = []
    for q in queries:
        g = torch.Generator(device=device).manual_seed(seed)
        frames.append(model.generate(r, q[None, None], generator=g)[0, 0, 0])
    return torch.stack(frames).cpu()


def save_gif(
    frames: torch.Tensor, path: str | os.PathLike, scale: int = 4, frame_ms: int = 80
) -> Path:
    """Write frames (f, 3, s, s) in [0, 1] as a looping GIF, enlarged ``scale`` times."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in upscale(to_uint8(frames), scale)]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0, disposal=2
    )
    return path
