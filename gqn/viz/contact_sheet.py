"""Contact sheets: a grid of frames, one row per scene and one column per view."""

from __future__ import annotations

import numpy as np
from PIL import Image


def contact_sheet(frames: np.ndarray, pad: int = 2, background: int = 255) -> Image.Image:
    """uint8 frames ``(rows, cols, H, W, 3)`` -> one RGB image with ``pad`` pixels between cells."""
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (rows, cols, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    rows, cols, h, w, _ = frames.shape
    sheet = np.full((pad + rows * (h + pad), pad + cols * (w + pad), 3), background, np.uint8)
    for r in range(rows):
        for c in range(cols):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            sheet[y : y + h, x : x + w] = frames[r, c]
    return Image.fromarray(sheet)
