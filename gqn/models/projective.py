"""A GQN whose representation is read along each query ray: the projective representation.

The paper's r is one feature map per scene (eq 4.4), the same for every query; the generator
must learn from v^q alone where each context pixel would land. Geometry-aware successors give
the renderer the context *at the query's rays* instead: E-GQN (Tobin, Zaremba & Abbeel,
"Geometry-Aware Neural Rendering", NeurIPS 2019) attends along the epipolar lines of the query
pixels in the context views; pixelNeRF (Yu et al., CVPR 2021) projects points of each query ray
into the context views and reads their features there. :class:`ProjectiveGQN` does the latter
for the GQN's conditional conv-DRAW:

- each context view keeps its own tower features r_k = f(x_k, v_k), not summed, brought to
  C = ``gather_channels`` by a 1x1 convolution (m, C, s/4, s/4) (fewer channels to carry along
  the rays: the gathering costs ~C D per cell);
- each cell of the generator's (s/4) x (s/4) grid casts the query camera's ray through its centre,
  and D points on it at depths t_1 < ... < t_D along the camera's forward axis
  (``depth_near`` ... ``depth_far``: the span of the scenes' content seen from the cameras)
  are projected into every context camera (:func:`project`, the pinhole of
  :mod:`gqn.data.render.camera`) and r_k is read there by bilinear interpolation;
- per depth, over the context views that see the point: the mean and the variance of the
  features (the variance is the multi-view agreement of a plane-sweep cost volume) and the
  fraction of views that see it, (2 C + 1) D channels per cell, mixed by a 1x1 and a 3x3
  convolution into r^q (m, r_channels, s/4, s/4), which the generator reads where the paper's
  reads r: cond = [v^q, r^q] (eq 4.5 with r^q for r).

Everything else (DRAW, inference, ELBO, prior) is the GQN's. ``represent`` returns the context
memory that r^q is computed from, one row per context view: (b, k, C (s/4)^2 + d + 1) = the
view's features, its viewpoint and its mask bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.gqn import GQN, GQNConfig
from gqn.models.rays import camera_axes, cell_directions
from gqn.models.registry import register_model
from gqn.models.representation import per_view
from gqn.viewpoint import CAMERA

MIN_DEPTH = 1e-3  # points closer to a context camera's image plane than this are not seen
OFF_IMAGE = 3.0  # a grid_sample coordinate whose bilinear neighbours are all outside the image


@dataclass
class ProjectiveGQNConfig(GQNConfig):
    """:class:`GQNConfig` and the query rays' depth samples: ``num_depths`` points from
    ``depth_near`` to ``depth_far`` (world units along the query camera's forward axis). The
    defaults cover our Shepard-Metzler objects (cameras 3.33 from the centre, objects within
    ~1.0 of it); rooms need ~0.1 to the far wall. Needs ``representation: tower`` (per-view
    feature maps to project into) and camera viewpoints. ``aggregation`` is unused: the
    per-depth statistics over the views replace the sum or mean of r_k."""

    name: str = "gqn-projective"
    representation: Literal["tower"] = "tower"
    num_depths: int = 16
    gather_channels: int = 16
    depth_near: float = 2.3
    depth_far: float = 4.4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.representation != "tower":
            raise ValueError(
                "model gqn-projective reads per-view feature maps: set model.representation "
                f"to 'tower', got {self.representation!r}"
            )
        if self.viewpoint_dim != CAMERA.dim:
            raise ValueError(
                f"model gqn-projective needs camera viewpoints (d = {CAMERA.dim}), got "
                f"viewpoint_dim {self.viewpoint_dim}"
            )
        for field in ("num_depths", "gather_channels"):
            if getattr(self, field) < 1:
                raise ValueError(f"model.{field} must be >= 1, got {getattr(self, field)}")
        if not 0 < self.depth_near <= self.depth_far:
            raise ValueError(
                "model.depth_near and model.depth_far must satisfy 0 < near <= far, got "
                f"{self.depth_near} and {self.depth_far}"
            )


def query_points(
    viewpoint: torch.Tensor, size: int, depths: torch.Tensor, fov_deg: float
) -> torch.Tensor:
    """World points (m, size^2, D, 3) at depths t (D,) on the rays of a size x size grid of the
    cameras ``viewpoint`` (m, 7): o + t (x right + y up + forward), cells row-major."""
    directions = cell_directions(viewpoint, size, size, fov_deg)  # (m, R, 3)
    return viewpoint[:, None, None, :3] + depths[:, None] * directions[:, :, None]


def project(
    points: torch.Tensor, viewpoint: torch.Tensor, fov_deg: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (m, k, P, 3) seen by cameras ``viewpoint`` (m, k, 7) -> (grid (m, k, P, 2),
    seen (m, k, P) bool). ``grid`` is (x, y) in F.grid_sample's convention (align_corners
    False: -1 and 1 are the image's left/top and right/bottom edges); a point is seen when it is
    in front of the camera and inside its image."""
    axes = camera_axes(viewpoint.flatten(0, 1)).unflatten(0, viewpoint.shape[:2])  # (m, k, 3, 3)
    cam = torch.einsum("mkpj,mkij->mkpi", points - viewpoint[:, :, None, :3], axes)
    depth = cam[..., 2]
    scale = math.tan(math.radians(fov_deg) / 2)
    in_front = depth > MIN_DEPTH
    grid = cam[..., :2] / (depth.clamp(min=MIN_DEPTH)[..., None] * scale)
    grid = torch.stack([grid[..., 0], -grid[..., 1]], dim=-1)
    seen = in_front & (grid.abs() <= 1).all(-1)
    return grid, seen


class RayGather(nn.Module):
    """Context features (m, k, C, h, h), their viewpoints (m, k, 7) and mask (m, k) ->
    r^q (m, r_channels, size, size) for query viewpoints (m, 7) (module docstring)."""

    def __init__(
        self,
        channels: int,
        r_channels: int,
        num_depths: int,
        depth_near: float,
        depth_far: float,
        fov_deg: float,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "depths", torch.linspace(depth_near, depth_far, num_depths), persistent=False
        )
        self.fov_deg = fov_deg
        self.mix = nn.Sequential(
            nn.Conv2d((2 * channels + 1) * num_depths, r_channels, 1),
            nn.ReLU(),
            nn.Conv2d(r_channels, r_channels, 3, padding=1),
            nn.ReLU(),
        )

    def statistics(
        self,
        features: torch.Tensor,
        viewpoints: torch.Tensor,
        mask: torch.Tensor,
        query: torch.Tensor,
        size: int,
    ) -> torch.Tensor:
        """Per cell and depth, over the unmasked views that see the point: mean and variance of
        the features and the fraction of the unmasked views that see it, (m, 2 C + 1, size^2, D),
        in fp32 (the geometry and the statistics; the mixing convolutions follow autocast)."""
        m, k, c = features.shape[:3]
        d = self.depths.numel()
        if k == 0:
            return features.new_zeros(m, 2 * c + 1, size * size, d, dtype=torch.float32)
        with torch.autocast(query.device.type, enabled=False):
            points = query_points(query.float(), size, self.depths, self.fov_deg)
            points = points.flatten(1, 2)[:, None].expand(m, k, -1, 3)
            grid, seen = project(points, viewpoints.float(), self.fov_deg)
            # points a view does not see (or a masked view) are moved off its image, where
            # zero padding samples exactly 0: the sums below then run over the seeing views only
            seen = seen & mask[:, :, None]
            grid = torch.where(seen[..., None], grid, grid.new_full((), OFF_IMAGE))
            sampled = F.grid_sample(
                features.float().flatten(0, 1),
                grid.flatten(0, 1)[:, :, None],
                align_corners=False,
                padding_mode="zeros",
            ).view(m, k, c, size * size, d)
            count = seen.float().sum(1).view(m, 1, size * size, d)
            mean = sampled.sum(1) / count.clamp(min=1)
            var = (sampled.square().sum(1) / count.clamp(min=1) - mean.square()).clamp(min=0)
            views = mask.float().sum(1).clamp(min=1).view(m, 1, 1, 1)
            return torch.cat([mean, var, count / views], dim=1)

    def forward(self, features, viewpoints, mask, query, size: int) -> torch.Tensor:
        stats = self.statistics(features, viewpoints, mask, query, size)  # (m, 2C+1, R, D)
        m = stats.shape[0]
        stats = stats.permute(0, 1, 3, 2).reshape(m, -1, size, size)
        return self.mix(stats)


@register_model("gqn-projective")
class ProjectiveGQN(GQN):
    """The GQN with r^q gathered along the query's rays from per-view features
    (module docstring); ``consistent = False`` as the GQN."""

    config_class = ProjectiveGQNConfig
    scene_code = False

    def __init__(self, config: ProjectiveGQNConfig | None = None) -> None:
        config = config or ProjectiveGQNConfig()
        super().__init__(config)
        self.to_gather = nn.Conv2d(config.r_channels, config.gather_channels, 1)
        self.gather = RayGather(
            config.gather_channels,
            config.r_channels,
            config.num_depths,
            config.depth_near,
            config.depth_far,
            config.fov_deg,
        )

    @classmethod
    def tiny_config(cls) -> ProjectiveGQNConfig:
        """The GQN's contract-test fixture with 4 depths and 4 gathered channels."""
        # pragma: no mutate block -- a contract-test fixture, no equation (docs/testing.md)
        gqn = dataclasses.asdict(GQN.tiny_config()) | {"name": "gqn-projective"}
        return ProjectiveGQNConfig(**gqn, num_depths=4, gather_channels=4)

    @property
    def memory_width(self) -> int:
        """Width of one context view's row in the memory: C (s/4)^2 + d + 1."""
        return self.config.gather_channels * self.hidden_size**2 + self.viewpoint_dim + 1

    def represent(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The context memory (b, k, C (s/4)^2 + d + 1), fp32: per view, f(x_k, v_k) brought
        to C channels and flattened, v_k and the mask bit (1 = a view). k = 0 gives
        (b, 0, width)."""
        mask = self.check_views(context_images, context_viewpoints, context_mask, "context")
        b, k = mask.shape
        if k == 0:
            return context_images.new_zeros(b, 0, self.memory_width)
        r_k = per_view(self.representation, context_images, context_viewpoints, mask)
        r_k = self.to_gather(r_k.flatten(0, 1)).unflatten(0, (b, k))
        viewpoints = torch.where(mask[:, :, None], context_viewpoints, 0.0).float()
        # fp32 also under autocast: the cameras in bf16 would move the projections by ~0.1 cell
        return torch.cat([r_k.float().flatten(2), viewpoints, mask[:, :, None].float()], dim=-1)

    def _check_r(self, r: torch.Tensor, m: int) -> None:
        if r.dim() != 3 or r.shape[0] != m or r.shape[2] != self.memory_width:
            raise ValueError(
                f"the context memory must be (m={m}, k, {self.memory_width}) for m queries: one "
                f"per scene from represent(), got {tuple(r.shape)} after repeating it per query"
            )

    def condition(self, r: torch.Tensor, query_viewpoint: torch.Tensor) -> torch.Tensor:
        """[v^q, r^q] (m, p + r_channels, s/4, s/4) from the context memory r (m, k, width)
        repeated per query and query_viewpoint (m, d)."""
        size, d = self.hidden_size, self.viewpoint_dim
        m = query_viewpoint.shape[0]
        if query_viewpoint.shape != (m, d):
            raise ValueError(
                f"query_viewpoint must be (b, {d}), got {tuple(query_viewpoint.shape)}"
            )
        self._check_r(r, m)
        c = self.config.gather_channels
        split = c * size * size
        features = r[..., :split].unflatten(-1, (c, size, size))
        viewpoints, mask = r[..., split : split + d], r[..., -1] > 0.5
        r_q = self.gather(features, viewpoints, mask, query_viewpoint, size)
        return torch.cat([self.pose_map(query_viewpoint, size, size), r_q], dim=1)
