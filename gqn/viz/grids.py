"""Image grids of model outputs (PNG via Pillow), built on :func:`contact_sheet`.

Images are float tensors ``(..., 3, s, s)`` in [0, 1]; cells are enlarged by an integer
``scale`` (nearest neighbour) so 32x32 outputs stay readable.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from gqn.viz.contact_sheet import contact_sheet

BACKGROUND = 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(..., 3, s, s) float in [0, 1] -> uint8 (..., s, s, 3)."""
    x = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return np.moveaxis(x, -3, -1)


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 (..., H, W, 3) by an integer factor."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _sheet(cells: list[list[np.ndarray | None]], size: int, scale: int) -> Image.Image:
    """Rows of uint8 (s, s, 3) cells (None = blank) -> one image; short rows padded blank."""
    cols = max(len(r) for r in cells)
    blank = np.full((size, size, 3), BACKGROUND, np.uint8)
    grid = np.stack(
        [
            np.stack([c if c is not None else blank for c in r] + [blank] * (cols - len(r)))
            for r in cells
        ]
    )
    return contact_sheet(upscale(grid, scale))


def sample_grid(
    context: torch.Tensor,
    samples: torch.Tensor,
    truth: torch.Tensor | None = None,
    scale: int = 2,
) -> Image.Image:
    """First row: the K context views (k, 3, s, s). Then one row per query: its ground truth
    (q, 3, s, s) — a blank cell if None — followed by its n samples (q, n, 3, s, s)."""
    size = samples.shape[-1]
    rows: list[list[np.ndarray | None]] = [list(to_uint8(context))]
    gt = to_uint8(truth) if truth is not None else [None] * samples.shape[0]
    for g, s in zip(gt, to_uint8(samples), strict=True):
        rows.append([g, *s])
    return _sheet(rows, size, scale)


def comparison_grid(columns: list[torch.Tensor], scale: int = 2) -> Image.Image:
    """Side by side columns of equal length (b, 3, s, s), e.g. ground truth | posterior | prior:
    row i shows image i of every column."""
    arrays = [to_uint8(c) for c in columns]
    rows = [[a[i] for a in arrays] for i in range(len(arrays[0]))]
    return _sheet(rows, columns[0].shape[-1], scale)


def strip(images: torch.Tensor, scale: int = 2) -> Image.Image:
    """One row of images (n, 3, s, s)."""
    return contact_sheet(upscale(to_uint8(images)[None], scale))
