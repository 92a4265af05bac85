"""Image pyramids of the multi-scale generators (thesis §4.1.4): bilinear scaling by 2.

Layer i of L receives the image at 1/2^(L-1-i) of its resolution (i = 0 the coarsest):

    x_{L-1} = x,  x_{i-1} = down(x_i)              downsampled images (models 1-4)
    y_0 = x_0,    y_i = x_i - up(x_{i-1})          high-frequency details (models 5, 6)

``down`` and ``up`` are bilinear interpolation by a factor of 2 (``align_corners=False``): down
is then exactly the mean of each 2x2 block, so repeated halving is a box filter and never
aliases, and :func:`collapse` inverts :func:`high_frequency` exactly (a Laplacian pyramid).
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F


def down(x: torch.Tensor) -> torch.Tensor:
    """(m, c, s, s) -> (m, c, s/2, s/2), bilinear (= the mean of each 2x2 block)."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


def up(x: torch.Tensor) -> torch.Tensor:
    """(m, c, s, s) -> (m, c, 2s, 2s), bilinear."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def image_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x_0, ..., x_{L-1}], coarsest first: x_i (m, c, s/2^(L-1-i), same); x_{L-1} = x."""
    out = [x]
    for _ in range(levels - 1):
        out.insert(0, down(out[0]))
    return out


def high_frequency(pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
    """[y_0, ..., y_{L-1}]: y_0 = x_0, y_i = x_i - up(x_{i-1}) (thesis §4.1.4)."""
    return [pyramid[0]] + [x - up(prev) for prev, x in pairwise(pyramid)]


def collapse(parts: list[torch.Tensor]) -> torch.Tensor:
    """The sum of layer outputs at their own resolutions, coarsest first, at the finest one:
    o_0 = p_0, o_i = p_i + up(o_{i-1}); returns o_{L-1}. Inverts :func:`high_frequency`."""
    out = parts[0]
    for part in parts[1:]:
        out = part + up(out)
    return out
