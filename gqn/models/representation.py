"""Representation networks f: r_k = f(x_k, v_k), r = sum_k r_k (thesis eqs 4.3-4.4).

Three architectures from Eslami et al. (2018, fig. S1; thesis figs 4.6-4.8), written for any
image size divisible by 8 (the paper uses 64; sizes 32, 64 and 128 are tested):

- :class:`Pyramid`: v broadcast to every pixel and concatenated to the image; four strided
  convolutions (k2s2 -> 32, k2s2 -> 64, k2s2 -> 128, k(s/8)s(s/8) -> 256) down to 1x1x256.
- :class:`Tower`: conv k2s2 -> 256; a residual block down to 1/4 resolution; v broadcast and
  concatenated; a second residual block; a 1x1 conv. Output (s/4)x(s/4)x256 (16x16x256 at 64).
- :class:`Pool`: the tower followed by average pooling to 1x1x256.

Every convolution is followed by a ReLU, as in the paper's figure. Viewpoints are broadcast by
``expand`` (repetition), never by learned layers.

:func:`aggregate` sums the per-view r_k over the context views of each scene with a mask, so a
batch can hold scenes with different numbers of views, including none (r = 0). It can also
average them (``reduction="mean"``): the paper sums (eq 4.4), which makes r grow linearly with
the number of views K; CGQN (Kumar et al. 2018, §3) asks only for a permutation-invariant
aggregation, and the thesis (§4.1) notes that summed views beyond some point interfere. See
``GQNConfig.aggregation`` for when the mean matters.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.rays import RayMap


class Representation(nn.Module):
    """Base class: ``forward(x (n, c, s, s), v (n, d)) -> r_k (n, r_channels, rh, rw)``;
    d is the size of the dataset's viewpoint encoding (:mod:`gqn.viewpoint`). ``pose_map``
    (:class:`gqn.models.rays.RayMap`) turns v into the map concatenated to the features: v
    broadcast (default, the paper) or v with each cell's ray."""

    def __init__(self, image_size: int, r_channels: int, pose_map: RayMap | None = None) -> None:
        super().__init__()
        if image_size % 8 != 0 or image_size < 8:
            raise ValueError(f"representation needs an image size divisible by 8, got {image_size}")
        self.image_size = image_size
        self.r_channels = r_channels
        self.pose_map = pose_map or RayMap()

    @property
    def output_size(self) -> int:
        """Spatial size of r (1 for pyramid and pool, image_size / 4 for the tower)."""
        raise NotImplementedError


class Pyramid(Representation):
    def __init__(
        self, image_size: int, image_channels: int, r_channels: int, pose_map: RayMap | None
    ) -> None:
        super().__init__(image_size, r_channels, pose_map)
        last = image_size // 8
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(image_channels + self.pose_map.channels, 32, 2, stride=2),
                nn.Conv2d(32, 64, 2, stride=2),
                nn.Conv2d(64, 128, 2, stride=2),
                nn.Conv2d(128, r_channels, last, stride=last),
            ]
        )

    @property
    def output_size(self) -> int:
        return 1

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, self.pose_map(v, x.shape[-2], x.shape[-1])], dim=1)
        for conv in self.convs:
            h = F.relu(conv(h))
        return h


class Tower(Representation):
    def __init__(
        self, image_size: int, image_channels: int, r_channels: int, pose_map: RayMap | None
    ) -> None:
        super().__init__(image_size, r_channels, pose_map)
        c, half, p = r_channels, r_channels // 2, self.pose_map.channels
        self.conv1 = nn.Conv2d(image_channels, c, 2, stride=2)
        self.skip1 = nn.Conv2d(c, c, 2, stride=2)
        self.conv2 = nn.Conv2d(c, half, 3, padding=1)
        self.conv3 = nn.Conv2d(half, c, 2, stride=2)
        self.skip2 = nn.Conv2d(c + p, c, 3, padding=1)
        self.conv4 = nn.Conv2d(c + p, half, 3, padding=1)
        self.conv5 = nn.Conv2d(half, c, 3, padding=1)
        self.conv6 = nn.Conv2d(c, c, 1)

    @property
    def output_size(self) -> int:
        return self.image_size // 4

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv3(F.relu(self.conv2(h)))) + F.relu(self.skip1(h))
        h = torch.cat([h, self.pose_map(v, h.shape[-2], h.shape[-1])], dim=1)
        h = F.relu(self.conv5(F.relu(self.conv4(h)))) + F.relu(self.skip2(h))
        return F.relu(self.conv6(h))


class Pool(Tower):
    @property
    def output_size(self) -> int:
        return 1

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(super().forward(x, v), 1)


REPRESENTATIONS: dict[str, type[Representation]] = {
    "pyramid": Pyramid,
    "tower": Tower,
    "pool": Pool,
}


def make_representation(
    name: str,
    image_size: int,
    image_channels: int = 3,
    r_channels: int = 256,
    pose_map: RayMap | None = None,
) -> Representation:
    if name not in REPRESENTATIONS:
        raise ValueError(
            f"unknown representation '{name}'; choose one of {sorted(REPRESENTATIONS)}"
        )
    return REPRESENTATIONS[name](image_size, image_channels, r_channels, pose_map)


Reduction = Literal["sum", "mean"]


def per_view(
    network: Representation, images: torch.Tensor, viewpoints: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """r_k = f(x_k, v_k) of every view, (b, k, r_channels, rh, rw), all b*k views in one
    batched call (k >= 1). Masking is by selection: a masked view's image and viewpoint are
    replaced by zeros before f, so whatever its slot holds (NaN, inf) gives a finite r_k."""
    b, k = images.shape[:2]
    images = torch.where(mask[:, :, None, None, None], images, images.new_zeros(()))
    viewpoints = torch.where(mask[:, :, None], viewpoints, viewpoints.new_zeros(()))
    return network(images.flatten(0, 1), viewpoints.flatten(0, 1)).unflatten(0, (b, k))


def aggregate(
    network: Representation,
    images: torch.Tensor,
    viewpoints: torch.Tensor,
    mask: torch.Tensor,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """r = sum_k mask_k * f(x_k, v_k) (eq 4.4), all b*k views in one batched call; with
    ``reduction="mean"`` the sum is divided by the number of unmasked views of each scene.

    Masking is by selection: a masked view's image and viewpoint are replaced by zeros before f
    (its r_k is then finite and weighted by 0), so whatever a masked slot holds (NaN, inf) can
    reach neither r nor the gradients; for finite inputs r is bit-identical to weighting the
    r_k of the inputs as given.

    Shapes: images (b, k, c, s, s), viewpoints (b, k, d), mask (b, k) bool
    -> r (b, r_channels, rh, rw). A scene with no (unmasked) view has r = 0.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    b, k = images.shape[:2]
    size = network.output_size
    if k == 0:
        return images.new_zeros(b, network.r_channels, size, size)
    r_k = per_view(network, images, viewpoints, mask)
    weights = mask.to(r_k.dtype)
    if reduction == "mean":
        weights = weights / weights.sum(1, keepdim=True).clamp(min=1)
    return (r_k * weights[:, :, None, None, None]).sum(1)
