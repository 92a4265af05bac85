"""Anti-aliased 2-D shapes on a black frame: the painter of the narratives datasets (seed 003).

Coordinates are frame units: ``(x, y)`` in ``[0, 1]^2``, x to the right, y down the image rows,
a shape's size is its radius ``r`` in frame widths. Every shape is a signed distance ``d`` (pixels,
negative inside) and covers a pixel by ``clamp(0.5 - d, 0, 1)``: the area of the pixel inside a
straight edge through it, so edge pixels take intermediate values (analytic anti-aliasing with
one sample per pixel). Shapes are composited over each other in order (the last on top).

Shapes (all centred on their centre, ``r`` = radius):

- ``square``: axis-aligned, half-side ``0.8 r``;
- ``circle``: radius ``r``;
- ``triangle``: equilateral, pointing up, circumradius ``1.2 r`` about its centroid;
- ``cross``: a plus sign of two bars ``2 r`` long and ``r`` wide (thick enough to keep a fully
  covered pixel down to r = 1 px).

Convex polygons use the largest distance to their edges' lines (exact inside and on the edges,
mitred outside the corners); the cross is the union (``min``) of its two bars.
"""

from __future__ import annotations

import math

import torch

SHAPES = ("square", "circle", "triangle", "cross")

# 12 colours far apart in RGB (pairwise distance >= 0.39), none of them grey or dark, so a shape
# reads as one palette colour even on its anti-aliased edge.
PALETTE_NAMES = (
    "red",
    "orange",
    "yellow",
    "lime",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
    "pink",
    "white",
    "sky",
)
PALETTE = torch.tensor(
    [
        [1.00, 0.00, 0.00],
        [1.00, 0.50, 0.00],
        [1.00, 1.00, 0.00],
        [0.55, 1.00, 0.35],
        [0.00, 0.65, 0.00],
        [0.00, 1.00, 1.00],
        [0.15, 0.25, 1.00],
        [0.55, 0.00, 0.85],
        [1.00, 0.00, 1.00],
        [1.00, 0.60, 0.75],
        [1.00, 1.00, 1.00],
        [0.45, 0.70, 1.00],
    ]
)


def _bar(x: torch.Tensor, y: torch.Tensor, hx: torch.Tensor, hy: torch.Tensor) -> torch.Tensor:
    return torch.maximum(x.abs() - hx, y.abs() - hy)


def signed_distance(
    kind: torch.Tensor, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor
) -> torch.Tensor:
    """Signed distance of points ``(x, y)`` from shapes of ``kind`` (index into SHAPES) and radius
    ``r``, all relative to the shape's centre and broadcast together (any common shape)."""
    square = _bar(x, y, 0.8 * r, 0.8 * r)
    circle = torch.sqrt(x * x + y * y) - r
    s = math.sqrt(3) / 2  # edges' outward normals (0, 1) and (+-sqrt(3)/2, -1/2); apothem 0.6 r
    triangle = torch.maximum(y, s * x.abs() - 0.5 * y) - 0.6 * r
    cross = torch.minimum(_bar(x, y, r, r / 2), _bar(x, y, r / 2, r))
    return torch.where(
        kind == 0, square, torch.where(kind == 1, circle, torch.where(kind == 2, triangle, cross))
    )


def coverage(
    kind: torch.Tensor, center: torch.Tensor, radius: torch.Tensor, image_size: int
) -> torch.Tensor:
    """Pixel coverage in ``[0, 1]`` ``(..., S, S)`` of shapes ``kind (...)``, ``center (..., 2)``
    and ``radius (...)`` in frame units, S = ``image_size``."""
    s = image_size
    grid = torch.arange(s, dtype=center.dtype, device=center.device) + 0.5  # pixel centres
    px = (center[..., 0] * s)[..., None, None]
    py = (center[..., 1] * s)[..., None, None]
    d = signed_distance(
        kind[..., None, None],
        grid[None, :] - px,
        grid[:, None] - py,
        (radius * s)[..., None, None],
    )
    return (0.5 - d).clamp(0.0, 1.0)


def draw_shapes(
    kind: torch.Tensor,
    center: torch.Tensor,
    radius: torch.Tensor,
    color: torch.Tensor,
    image_size: int,
) -> torch.Tensor:
    """Frames uint8 ``(B, T, S, S, 3)`` of ``N`` shapes per frame painted in order over black.

    ``kind (B, N)`` int index into SHAPES, ``center (B, T, N, 2)`` and ``radius (B, N)`` in frame
    units, ``color (B, T, N, 3)`` in ``[0, 1]`` (a shape may change colour between frames).
    """
    b, t, n = center.shape[:3]
    alpha = coverage(
        kind[:, None].expand(b, t, n), center, radius[:, None].expand(b, t, n), image_size
    )  # (B, T, N, S, S)
    image = center.new_zeros(b, t, image_size, image_size, 3)
    for i in range(n):
        a = alpha[:, :, i, :, :, None]
        image = image + a * (color[:, :, i, None, None, :] - image)
    return (image * 255.0).round_().to(torch.uint8)
