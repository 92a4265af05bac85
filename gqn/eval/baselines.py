"""Reference baselines that any useful model must beat.

- *Nearest context view*: predict the query image by the context image whose camera is closest
  to the query camera. Distance = Euclidean distance of the camera positions + angle (radians)
  between the viewing directions; for cameras looking at the origin from one radius both terms
  rank views alike, and the angle breaks ties for cameras at one position.
- *Mean training image*: the pixel-wise mean over every view of the training scenes (or of
  ``max_scenes`` of them, evenly spaced).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from gqn.data.dataset import SceneDataset
from gqn.viewpoint import look_direction, viewpoint_to_pose

log = logging.getLogger(__name__)


def pose_distance(context_viewpoints: torch.Tensor, query_viewpoint: torch.Tensor) -> torch.Tensor:
    """(b, k) distance of each context camera (b, k, 7) to the query camera (b, 7)."""
    ctx, query = viewpoint_to_pose(context_viewpoints), viewpoint_to_pose(query_viewpoint)[:, None]
    position = (ctx[..., :3] - query[..., :3]).norm(dim=-1)
    d_ctx = look_direction(ctx[..., 3], ctx[..., 4])
    d_query = look_direction(query[..., 3], query[..., 4])
    cos = (d_ctx * d_query).sum(-1).clamp(-1.0, 1.0)
    return position + torch.arccos(cos)


def nearest_view_index(
    context_viewpoints: torch.Tensor,
    query_viewpoint: torch.Tensor,
    context_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(b,) index of the context view closest to the query (masked slots never chosen)."""
    d = pose_distance(context_viewpoints, query_viewpoint)
    if context_mask is not None:
        if not context_mask.any(1).all():
            raise ValueError("nearest-view baseline needs at least one context view per scene")
        d = d.masked_fill(~context_mask, float("inf"))
    return d.argmin(1)


def nearest_view(
    context_images: torch.Tensor,
    context_viewpoints: torch.Tensor,
    query_viewpoint: torch.Tensor,
    context_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """(b, c, s, s): the context image (b, k, c, s, s) nearest in pose to each query."""
    idx = nearest_view_index(context_viewpoints, query_viewpoint, context_mask)
    return context_images[torch.arange(len(idx), device=idx.device), idx]


def mean_image(dataset: SceneDataset, max_scenes: int | None = None) -> torch.Tensor:
    """(3, H, W) pixel-wise mean in [0, 1] over all views of the dataset's scenes.

    ``max_scenes`` limits the pass to that many scenes, evenly spaced, for large splits.
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("mean image of an empty dataset")
    picks = (
        range(n)
        if max_scenes is None or max_scenes >= n
        else np.linspace(0, n - 1, max_scenes).astype(int)
    )
    total, count = None, 0
    for i in picks:
        frames, _ = dataset[int(i)]
        s = frames.to(torch.float64).sum(0)
        total = s if total is None else total + s
        count += frames.shape[0]
    log.info("mean image over %d views of %d scenes", count, len(picks))
    return (total / (255.0 * count)).permute(2, 0, 1).float()
