"""The per-layer figure of a multi-scale generator (thesis figs 5.10-5.15).

Columns are query views (one per scene); the first row is the ground truth, then one row per
layer with what that layer drew, each row rescaled to [0, 1] by its own minimum and maximum (as
the thesis does, so that a barely used layer is still visible), and last the model's image
clamped to [0, 1]. A left margin prints each row's [min, max] before rescaling.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from gqn.viz.contact_sheet import contact_sheet
from gqn.viz.grids import to_uint8, upscale

MARGIN = 150  # pixels of the left margin that holds the labels
PAD = 2  # contact_sheet's padding


def layer_figure(
    truth: torch.Tensor, rows: list[torch.Tensor], scale: int = 2
) -> tuple[Image.Image, list[tuple[float, float]]]:
    """``truth`` (m, c, s, s) in [0, 1]; ``rows``: the L layers' images (m, c, s_i, s_i) with
    s / s_i an integer, then the model's image (m, c, s, s), all unclamped. Returns the figure
    and each row's (min, max) before rescaling (layers, then the image)."""
    size = truth.shape[-1]
    ranges, cells = [], [to_uint8(truth)]
    for i, row in enumerate(rows):
        row = row.detach().float().cpu()
        lo, hi = row.min().item(), row.max().item()
        ranges.append((lo, hi))
        if i < len(rows) - 1:
            row = (row - lo) / max(hi - lo, 1e-12)
        factor = size // row.shape[-1]
        cells.append(upscale(to_uint8(row), factor))
    sheet = contact_sheet(upscale(np.stack(cells), scale), pad=PAD)
    figure = Image.new("RGB", (sheet.width + MARGIN, sheet.height), "white")
    figure.paste(sheet, (MARGIN, 0))
    draw = ImageDraw.Draw(figure)
    cell = size * scale + PAD
    labels = ["ground truth"] + [
        f"{'layer ' + str(i) if i < len(rows) - 1 else 'image'}: [{lo:.3f}, {hi:.3f}]"
        for i, (lo, hi) in enumerate(ranges)
    ]
    for r, label in enumerate(labels):
        draw.text((4, PAD + r * cell + cell // 2 - 6), label, fill="black")
    return figure, ranges
