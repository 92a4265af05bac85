"""Collation: uint8 frames and raw poses of K + n views per scene -> the tensors of a
:class:`gqn.batch.QueryBatch` (first K views context, last n targets), viewpoints encoded by the
store's :class:`gqn.viewpoint.ViewpointEncoder`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gqn.batch import QueryBatch
from gqn.viewpoint import CAMERA, ViewpointEncoder

# (frames uint8 (b, K+n, H, W, 3), poses float32 (b, K+n, 5)) -> the six tensors of a QueryBatch
BatchTensors = tuple[torch.Tensor, ...]


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames ``(..., H, W, 3)`` -> float32 images ``(..., 3, H, W)`` in [0, 1].

    A new tensor (channels-first view strides, one copy); ``frames`` is never modified.
    """
    return frames.movedim(-1, -3).to(torch.float32, copy=True).div_(255.0)


def collate_scenes(
    frames: torch.Tensor,
    poses: torch.Tensor,
    num_targets: int = 1,
    encoder: ViewpointEncoder = CAMERA,
) -> BatchTensors:
    """uint8 frames ``(b, K+n, H, W, 3)`` + raw poses ``(b, K+n, 5)`` -> the tensors of a
    QueryBatch: the first K views are context, the last n = ``num_targets`` the targets.

    Returns ``(context_images (b, K, 3, H, W) float in [0, 1], context_viewpoints (b, K, d),
    context_mask (b, K) bool, target_images (b, n, 3, H, W), target_viewpoints (b, n, d),
    target_mask (b, n) bool)``; ``encoder`` turns the raw poses into d-dim viewpoints.
    """
    images = frames_to_images(frames)
    vp = encoder.encode(poses[..., : encoder.raw_dim].float())
    b, k = images.shape[0], images.shape[1] - num_targets
    return (
        images[:, :k].contiguous(),
        vp[:, :k].contiguous(),
        torch.ones(b, k, dtype=torch.bool),
        images[:, k:].contiguous(),
        vp[:, k:].contiguous(),
        torch.ones(b, num_targets, dtype=torch.bool),
    )


def to_query_batch(t: BatchTensors) -> QueryBatch:
    return QueryBatch(*t)


@dataclass(frozen=True)
class CollateItems:
    """``collate_fn`` of stored scenes: ``SceneDataset`` items of equal K + n -> QueryBatch
    tensors (:func:`collate_scenes`)."""

    num_targets: int = 1
    encoder: ViewpointEncoder = CAMERA

    def __call__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> BatchTensors:
        frames = torch.stack([f for f, _ in items])
        poses = torch.stack([p for _, p in items])
        return collate_scenes(frames, poses, self.num_targets, self.encoder)
