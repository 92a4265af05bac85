"""Gaussian heads: a convolution giving the mean and a positive standard deviation.

Used for the prior eta^pi (thesis eq 4.6) and the posterior eta^q (eq 4.13).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_STD = 1e-4


class GaussianHead(nn.Module):
    """``h (b, in, H, W) -> (mean, std)``, each (b, out, H, W); std = softplus(.) + 1e-4."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_std = self.conv(h).chunk(2, dim=1)
        return mean, F.softplus(raw_std) + MIN_STD
