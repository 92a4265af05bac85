"""How a camera viewpoint reaches the pixels: broadcast (the paper) or per-pixel rays.

The paper (Eslami et al. 2018, fig. S2; thesis eq 4.2) broadcasts the 7-d viewpoint vector v over
every cell of a feature map, so each convolution must learn the camera geometry from scratch.
Later scene-representation models (SRT, Sajjadi et al. 2022; LVSM, Jin et al. 2024) give every
pixel the ray it sees instead, in Plücker coordinates (d, o x d): the ray's unit direction d and
its moment about the origin, for a camera at o. :class:`RayMap` does that here, next to the
broadcast vector, for the pinhole cameras of :mod:`gqn.data.render.camera` (no roll; the field of
view spans the image width), computing the camera axes from v's cos/sin entries directly.

Both maps have shape (n, channels, h, w) for viewpoints (n, d); ``channels`` is d (broadcast,
any kind of viewpoint) or 7 + 6 (camera viewpoints and their Plücker coordinates). An h x w grid
covers the whole image, so its cell centres are the pixel centres of an h x w rendering of the
same camera.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gqn.data.render.camera import pixel_offsets
from gqn.viewpoint import CAMERA

PoseEncoding = Literal["broadcast", "rays"]


def broadcast_viewpoint(v: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(n, d) -> (n, d, height, width) by repetition (a view, no learned layer)."""
    return v[:, :, None, None].expand(-1, -1, height, width)


def camera_axes(viewpoint: torch.Tensor) -> torch.Tensor:
    """(n, 7) viewpoints -> (n, 3, 3) rows (right, up, forward) in world coordinates.

    forward = (cos p cos y, -cos p sin y, sin p); right = (-sin y, -cos y, 0);
    up = right x forward (:func:`gqn.data.render.camera.camera_basis`, from cos/sin directly).
    """
    cy, sy, cp, sp = viewpoint[:, 3:7].unbind(-1)
    forward = torch.stack([cp * cy, -cp * sy, sp], dim=-1)
    right = torch.stack([-sy, -cy, torch.zeros_like(sy)], dim=-1)
    up = torch.linalg.cross(right, forward, dim=-1)
    return torch.stack([right, up, forward], dim=-2)


def cell_directions(
    viewpoint: torch.Tensor, height: int, width: int, fov_deg: float
) -> torch.Tensor:
    """(n, 7) viewpoints -> (n, height * width, 3) world directions x right + y up + forward of
    the cells' rays, row-major, not normalised (unit length along the forward axis)."""
    offsets = pixel_offsets(height, width, fov_deg, device=viewpoint.device)  # (h*w, 3)
    return torch.einsum("rk,nkj->nrj", offsets, camera_axes(viewpoint))


def plucker_rays(viewpoint: torch.Tensor, height: int, width: int, fov_deg: float) -> torch.Tensor:
    """(n, 7) viewpoints -> (n, 6, height, width) Plücker coordinates (d, o x d) of each cell's
    ray: d the unit direction, o the camera position. Always computed in fp32, also under bf16
    autocast: the rays are the pose signal, kept at full precision (and the cross product
    refuses mixed fp32/bf16 inputs)."""
    with torch.autocast(viewpoint.device.type, enabled=False):
        d = cell_directions(viewpoint.float(), height, width, fov_deg)
        d = d / d.norm(dim=-1, keepdim=True)
        o = viewpoint[:, None, :3].float().expand_as(d)
        moment = torch.linalg.cross(o, d, dim=-1)
        rays = torch.cat([d, moment], dim=-1).to(viewpoint.dtype)  # (n, h*w, 6)
    return rays.transpose(1, 2).reshape(viewpoint.shape[0], 6, height, width)


class RayMap(nn.Module):
    """Viewpoints (n, d) -> feature maps (n, channels, h, w) (no parameters).

    ``encoding="broadcast"``: v repeated at every cell (the paper; d channels, any viewpoint kind).
    ``encoding="rays"``: [v, Plücker ray of the cell] (7 + 6 channels; camera viewpoints only).
    """

    def __init__(
        self,
        encoding: PoseEncoding = "broadcast",
        fov_deg: float = 45.0,
        viewpoint_dim: int = CAMERA.dim,
    ) -> None:
        super().__init__()
        if encoding not in ("broadcast", "rays"):
            raise ValueError(f"pose_encoding must be 'broadcast' or 'rays', got {encoding!r}")
        if not 0 < fov_deg < 180:
            raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
        if encoding == "rays" and viewpoint_dim != CAMERA.dim:
            raise ValueError(
                f"pose_encoding 'rays' needs camera viewpoints (d = {CAMERA.dim}), "
                f"got viewpoint_dim {viewpoint_dim}: use pose_encoding 'broadcast'"
            )
        self.encoding = encoding
        self.fov_deg = fov_deg
        self.viewpoint_dim = viewpoint_dim
        self.channels = viewpoint_dim + (6 if encoding == "rays" else 0)

    def forward(self, viewpoint: torch.Tensor, height: int, width: int) -> torch.Tensor:
        v = broadcast_viewpoint(viewpoint, height, width)
        if self.encoding == "broadcast":
            return v
        return torch.cat([v, plucker_rays(viewpoint, height, width, self.fov_deg)], dim=1)
