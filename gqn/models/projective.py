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
  are projected into every context camera (:func:`gqn.models.projection.project_rays`, the
  pinhole of :mod:`gqn.data.render.camera`) and r_k is read there by bilinear interpolation;
- per depth, over the context views that see the point: the mean and the variance of the
  features (the variance is the multi-view agreement of a plane-sweep cost volume) and the
  fraction of views that see it, (2 C + 1) D channels per cell, mixed by a 1x1 and a 3x3
  convolution into r^q (m, r_channels, s/4, s/4), which the generator reads where the paper's
  reads r: cond = [v^q, r^q] (eq 4.5 with r^q for r);
- with ``pixel_channels`` P > 0, also the context *pixels* (pixelNeRF's image-level features,
  IBRNet's colours): every query pixel's ray is projected the same way into the context images
  at full resolution, the colours' per-depth statistics (2 x 3 + 1) D are brought to P channels
  per pixel by a 1x1 convolution and ReLU, and each cell's 4 x 4 pixels (16 P channels,
  space-to-depth) join the cell's feature statistics before the mixing. The tower's s/4 grid
  blurs a cube's colour with its neighbours'; the pixels carry it to the query pixel that sees
  the same point;
- with ``pixel_canvas`` (and P > 0), those P channels per pixel, by a 1x1 convolution, are also
  the generator's initial canvas u_0 (m, canvas, s, s), where the GQN's is zero: the
  observation head reads the context colours at full resolution, not only as the UpConv of the
  (s/4)-grid hidden states (the inference network's down(u_l) sees u_0 too).

Everything else (DRAW, inference, ELBO, prior) is the GQN's. ``represent`` returns the context
memory that r^q is computed from, one row per context view: (b, k, C (s/4)^2 [+ c s^2] + d + 1)
= the view's features, [its image when P > 0,] its viewpoint and its mask bit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.gqn import GQN, GQNConfig
from gqn.models.projection import project_rays
from gqn.models.registry import register_model
from gqn.models.representation import per_view
from gqn.viewpoint import CAMERA

OFF_IMAGE = 3.0  # a grid_sample coordinate whose bilinear neighbours are all outside the image


@dataclass
class ProjectiveGQNConfig(GQNConfig):
    """:class:`GQNConfig` and the query rays' depth samples: ``num_depths`` points from
    ``depth_near`` to ``depth_far`` (world units along the query camera's forward axis). The
    defaults cover our Shepard-Metzler objects (cameras 3.33 from the centre, objects within
    ~1.0 of it); rooms need ~0.1 to the far wall. ``pixel_channels`` P > 0 also reads the
    context images' pixels along every query pixel's ray (module docstring; 0: off);
    ``pixel_canvas`` also starts the generator's canvas from them (needs P > 0). Needs
    ``representation: tower`` (per-view feature maps to project into) and camera viewpoints.
    ``aggregation`` is unused: the per-depth statistics over the views replace the sum or mean
    of r_k."""

    name: str = "gqn-projective"
    representation: Literal["tower"] = "tower"
    num_depths: int = 16
    gather_channels: int = 16
    depth_near: float = 2.3
    depth_far: float = 4.4
    pixel_channels: int = 0
    pixel_canvas: bool = False

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
        if self.pixel_channels < 0:
            raise ValueError(
                f"model.pixel_channels must be >= 0 (0: off), got {self.pixel_channels}"
            )
        if self.pixel_canvas and self.pixel_channels == 0:
            raise ValueError(
                "model.pixel_canvas starts the canvas from the context pixels: set "
                "model.pixel_channels > 0 (e.g. 8) or model.pixel_canvas=false"
            )
        if not 0 < self.depth_near <= self.depth_far:
            raise ValueError(
                "model.depth_near and model.depth_far must satisfy 0 < near <= far, got "
                f"{self.depth_near} and {self.depth_far}"
            )


class RayGather(nn.Module):
    """Context features (m, k, C, h, h), their viewpoints (m, k, 7) and mask (m, k) [and
    images (m, k, 3, s, s) when ``pixel_channels`` > 0] -> r^q (m, r_channels, size, size) [and
    the pixels' channels (m, P, s, s)] for query viewpoints (m, 7) (module docstring)."""

    def __init__(
        self,
        channels: int,
        r_channels: int,
        num_depths: int,
        depth_near: float,
        depth_far: float,
        fov_deg: float,
        pixel_channels: int = 0,
        image_channels: int = 3,
        cell_pixels: int = 4,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "depths", torch.linspace(depth_near, depth_far, num_depths), persistent=False
        )
        self.fov_deg = fov_deg
        self.cell_pixels = cell_pixels
        self.pixels = None
        if pixel_channels > 0:
            self.pixels = nn.Sequential(
                nn.Conv2d((2 * image_channels + 1) * num_depths, pixel_channels, 1), nn.ReLU()
            )
        mixed = (2 * channels + 1) * num_depths + pixel_channels * cell_pixels**2
        self.mix = nn.Sequential(
            nn.Conv2d(mixed, r_channels, 1),
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
            grid, seen = project_rays(
                query.float(), size, self.depths, viewpoints.float(), self.fov_deg
            )  # (m, k, R, D, 2), (m, k, R, D)
            # points a view does not see (or a masked view) are moved off its image, where
            # zero padding samples exactly 0: the sums below then run over the seeing views only
            seen = seen & mask[:, :, None, None]
            grid = torch.where(seen[..., None], grid, grid.new_full((), OFF_IMAGE))
            sampled = F.grid_sample(
                features.float().flatten(0, 1),
                grid.flatten(0, 1),
                align_corners=False,
                padding_mode="zeros",
            ).view(m, k, c, size * size, d)
            count = seen.float().sum(1)[:, None]
            per_view = 1 / count.clamp(min=1)
            mean = sampled.sum(1) * per_view
            var = (sampled.square().sum(1) * per_view - mean.square()).clamp(min=0)
            views = mask.float().sum(1).clamp(min=1).view(m, 1, 1, 1)
            return torch.cat([mean, var, count / views], dim=1)

    def depth_maps(self, values, viewpoints, mask, query, size: int) -> torch.Tensor:
        """:meth:`statistics` as maps (m, (2 C + 1) D, size, size): channel s D + t is
        statistic s at depth t."""
        stats = self.statistics(values, viewpoints, mask, query, size)  # (m, 2C+1, R, D)
        return stats.permute(0, 1, 3, 2).reshape(stats.shape[0], -1, size, size)

    def forward(
        self, features, viewpoints, mask, query, size: int, images=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(r^q (m, r_channels, size, size), the pixels' channels (m, P, s, s) or None without
        the pixels' path); ``images`` (m, k, c, s, s) is required with ``pixel_channels`` > 0
        and ignored without."""
        if self.pixels is not None and images is None:
            raise ValueError("this RayGather reads the context pixels: pass images (m, k, c, s, s)")
        maps = [self.depth_maps(features, viewpoints, mask, query, size)]
        pixels = None
        if self.pixels is not None:
            s = size * self.cell_pixels
            pixels = self.pixels(self.depth_maps(images, viewpoints, mask, query, s))
            maps.append(F.pixel_unshuffle(pixels, self.cell_pixels))  # (m, 16 P, size, size)
        return self.mix(torch.cat(maps, dim=1)), pixels


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
            config.pixel_channels,
            config.image_channels,
            config.image_size // self.hidden_size,
        )
        self.to_canvas = None
        if config.pixel_canvas:
            self.to_canvas = nn.Conv2d(config.pixel_channels, config.canvas_channels, 1)

    @classmethod
    def tiny_config(cls) -> ProjectiveGQNConfig:
        """The GQN's contract-test fixture with 4 depths, 4 gathered channels, 2 pixel channels
        and the pixel canvas (the contract tests then cover both pixel paths too)."""
        # pragma: no mutate block -- a contract-test fixture, no equation (docs/testing.md)
        gqn = dataclasses.asdict(GQN.tiny_config()) | {"name": "gqn-projective"}
        return ProjectiveGQNConfig(
            **gqn, num_depths=4, gather_channels=4, pixel_channels=2, pixel_canvas=True
        )

    @property
    def pixel_width(self) -> int:
        """Width of a context image in the memory: c s^2 (c = ``image_channels``) with
        ``pixel_channels`` > 0, else 0."""
        c = self.config
        return c.image_channels * c.image_size**2 if c.pixel_channels > 0 else 0

    @property
    def memory_width(self) -> int:
        """Width of one context view's row in the memory: C (s/4)^2 [+ c s^2] + d + 1."""
        features = self.config.gather_channels * self.hidden_size**2
        return features + self.pixel_width + self.viewpoint_dim + 1

    def represent(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The context memory (b, k, C (s/4)^2 [+ c s^2] + d + 1), fp32: per view, f(x_k, v_k)
        brought to C channels and flattened, [x_k flattened when ``pixel_channels`` > 0,] v_k
        and the mask bit (1 = a view). k = 0 gives (b, 0, width)."""
        mask = self.check_views(context_images, context_viewpoints, context_mask, "context")
        b, k = mask.shape
        if k == 0:
            return context_images.new_zeros(b, 0, self.memory_width)
        r_k = per_view(self.representation, context_images, context_viewpoints, mask)
        r_k = self.to_gather(r_k.flatten(0, 1)).unflatten(0, (b, k))
        viewpoints = torch.where(mask[:, :, None], context_viewpoints, 0.0).float()
        rows = [r_k.float().flatten(2)]
        if self.pixel_width:
            rows.append(torch.where(mask[:, :, None], context_images.flatten(2), 0.0).float())
        # fp32 also under autocast: the cameras in bf16 would move the projections by ~0.1 cell
        return torch.cat([*rows, viewpoints, mask[:, :, None].float()], dim=-1)

    def _check_r(self, r: torch.Tensor, m: int) -> None:
        if r.dim() != 3 or r.shape[0] != m or r.shape[2] != self.memory_width:
            raise ValueError(
                f"the context memory must be (m={m}, k, {self.memory_width}) for m queries: one "
                f"per scene from represent(), got {tuple(r.shape)} after repeating it per query"
            )

    def condition(self, r: torch.Tensor, query_viewpoint: torch.Tensor) -> torch.Tensor:
        """[v^q, r^q] (m, p + r_channels, s/4, s/4) from the context memory r (m, k, width)
        repeated per query and query_viewpoint (m, d)."""
        return self.conditioning(r, query_viewpoint)[0]

    def conditioning(
        self, r: torch.Tensor, query_viewpoint: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(:meth:`condition`, u_0): u_0 (m, canvas_channels, s, s) from the pixels' channels
        with ``pixel_canvas``, else None (the zero canvas)."""
        size, d = self.hidden_size, self.viewpoint_dim
        m = query_viewpoint.shape[0]
        if query_viewpoint.shape != (m, d):
            raise ValueError(
                f"query_viewpoint must be (b, {d}), got {tuple(query_viewpoint.shape)}"
            )
        self._check_r(r, m)
        c, channels, s = self.config.gather_channels, self.config.image_channels, self.image_size
        features, images, viewpoints, mask = r.split(
            [c * size * size, self.pixel_width, d, 1], dim=-1
        )
        features = features.unflatten(-1, (c, size, size))
        # the cameras and the pixels are data: no gradient through the sampling grid or images
        viewpoints, images = viewpoints.detach(), images.detach()
        images = images.unflatten(-1, (channels, s, s)) if self.pixel_width else None
        r_q, pixels = self.gather(
            features, viewpoints, mask[..., 0] > 0.5, query_viewpoint, size, images
        )
        cond = torch.cat([self.pose_map(query_viewpoint, size, size), r_q], dim=1)
        return cond, None if self.to_canvas is None else self.to_canvas(pixels)
