"""The Consistent GQN's encoder f of one (frame, viewpoint) pair (Kumar et al. 2018, app. B).

Four convolutions, a ReLU between layers but not after the last:

    8 ch 2x2 stride 2 -> 16 ch 2x2 stride 2 -> 32 ch 3x3 stride 1 -> 32 ch 3x3 stride 1

The appendix does not say where the viewpoint enters; here v is broadcast over the image and
concatenated to it at the input (as the GQN's pyramid network does), so every layer sees it. The
3x3 layers are padded to keep the size: r_k is (32, s/4, s/4), the resolution of the DRAW
hidden states that read it. Scenes aggregate r_k with :func:`gqn.models.representation.aggregate`
(masked mean or sum; ``CGQNConfig.aggregation``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.rays import RayMap
from gqn.models.representation import Representation

ENCODER_CHANNELS = 32  # channels of r_k, the last layer's


class FrameEncoder(Representation):
    """``forward(x (m, c, s, s), v (m, d)) -> r_k (m, 32, s/4, s/4)``."""

    def __init__(self, image_size: int, image_channels: int, viewpoint_dim: int) -> None:
        pose_map = RayMap("broadcast", viewpoint_dim=viewpoint_dim)
        super().__init__(image_size, ENCODER_CHANNELS, pose_map)
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(image_channels + pose_map.channels, 8, 2, stride=2),
                nn.Conv2d(8, 16, 2, stride=2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.Conv2d(32, ENCODER_CHANNELS, 3, padding=1),
            ]
        )

    @property
    def output_size(self) -> int:
        return self.image_size // 4

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, self.pose_map(v, x.shape[-2], x.shape[-1])], dim=1)
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:  # no ReLU after the last layer
                h = F.relu(h)
        return h
