"""The query batch: what every model in :mod:`gqn.models` consumes.

Shapes (b scenes, k context slots, c=3 colour channels, h x w images):

- ``context_images``: (b, k, c, h, w) float in [0, 1]
- ``context_viewpoints``: (b, k, 7) (see :mod:`gqn.viewpoint`)
- ``context_mask``: (b, k) bool, True where the slot holds a real view. A batch may mix scenes
  with different numbers of context views, including none; masked slots contribute nothing to r.
- ``query_image``: (b, c, h, w) float in [0, 1]
- ``query_viewpoint``: (b, 7)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from gqn.viewpoint import VIEWPOINT_DIM


@dataclass
class QueryBatch:
    context_images: torch.Tensor
    context_viewpoints: torch.Tensor
    context_mask: torch.Tensor
    query_image: torch.Tensor
    query_viewpoint: torch.Tensor

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_scenes(self) -> int:
        return self.query_image.shape[0]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the tensor whose shape does not fit the others."""
        xc, vc, m = self.context_images, self.context_viewpoints, self.context_mask
        xq, vq = self.query_image, self.query_viewpoint
        if xq.dim() != 4:
            raise ValueError(f"query_image must be (b, c, h, w), got {tuple(xq.shape)}")
        b, c, h, w = xq.shape
        if xc.dim() != 5 or xc.shape[0] != b or xc.shape[2:] != (c, h, w):
            raise ValueError(
                f"context_images must be (b={b}, k, {c}, {h}, {w}), got {tuple(xc.shape)}"
            )
        k = xc.shape[1]
        if vc.shape != (b, k, VIEWPOINT_DIM):
            raise ValueError(
                f"context_viewpoints must be ({b}, {k}, {VIEWPOINT_DIM}), got {tuple(vc.shape)}"
            )
        if m.shape != (b, k) or m.dtype != torch.bool:
            raise ValueError(
                f"context_mask must be bool ({b}, {k}), got {m.dtype} {tuple(m.shape)}"
            )
        if vq.shape != (b, VIEWPOINT_DIM):
            raise ValueError(
                f"query_viewpoint must be ({b}, {VIEWPOINT_DIM}), got {tuple(vq.shape)}"
            )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> QueryBatch:
        return QueryBatch(
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in fields(self)
            }
        )

    @staticmethod
    def full_context(
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        query_image: torch.Tensor,
        query_viewpoint: torch.Tensor,
    ) -> QueryBatch:
        """A batch in which every context slot holds a real view."""
        b, k = context_images.shape[:2]
        mask = torch.ones(b, k, dtype=torch.bool, device=context_images.device)
        return QueryBatch(context_images, context_viewpoints, mask, query_image, query_viewpoint)
