"""The batch every model in :mod:`gqn.models` consumes: context views and target views of b scenes.

Shapes (b scenes, k context slots, n target slots, c colour channels, h x w images, d the
viewpoint size of the dataset's encoder, :mod:`gqn.viewpoint`; 7 for camera poses):

- ``context_images``: (b, k, c, h, w) float in [0, 1]
- ``context_viewpoints``: (b, k, d)
- ``context_mask``: (b, k) bool, True where the slot holds a real view. A batch may mix scenes
  with different numbers of context views, including none; masked slots contribute nothing to r.
- ``target_images``: (b, n, c, h, w) float in [0, 1], the views the model is asked to render
- ``target_viewpoints``: (b, n, d)
- ``target_mask``: (b, n) bool, True where the slot holds a real target; the loss of a masked
  target is zero.

n = 1 is the GQN's case (one query per scene); a model with a scene latent (Consistent GQN)
renders n > 1 targets of a scene from one draw of it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


def _check_views(images: torch.Tensor, viewpoints: torch.Tensor, mask: torch.Tensor, name: str):
    """Shapes of one (images, viewpoints, mask) triple; returns (b, slots, c, h, w, d)."""
    if images.dim() != 5:
        raise ValueError(f"{name}_images must be (b, slots, c, h, w), got {tuple(images.shape)}")
    b, slots = images.shape[:2]
    if viewpoints.dim() != 3 or viewpoints.shape[:2] != (b, slots):
        raise ValueError(
            f"{name}_viewpoints must be ({b}, {slots}, d), got {tuple(viewpoints.shape)}"
        )
    if mask.shape != (b, slots) or mask.dtype != torch.bool:
        raise ValueError(
            f"{name}_mask must be bool ({b}, {slots}), got {mask.dtype} {tuple(mask.shape)}"
        )
    return (*images.shape, viewpoints.shape[2])


@dataclass
class QueryBatch:
    context_images: torch.Tensor
    context_viewpoints: torch.Tensor
    context_mask: torch.Tensor
    target_images: torch.Tensor
    target_viewpoints: torch.Tensor
    target_mask: torch.Tensor

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_scenes(self) -> int:
        return self.target_images.shape[0]

    @property
    def num_targets(self) -> int:
        return self.target_images.shape[1]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the tensor whose shape does not fit the others."""
        b, _, c, h, w, d = _check_views(
            self.target_images, self.target_viewpoints, self.target_mask, "target"
        )
        xc = self.context_images
        if xc.dim() != 5 or xc.shape[0] != b or xc.shape[2:] != (c, h, w):
            raise ValueError(
                f"context_images must be (b={b}, k, {c}, {h}, {w}), got {tuple(xc.shape)}"
            )
        dc = _check_views(xc, self.context_viewpoints, self.context_mask, "context")[-1]
        if dc != d:
            raise ValueError(
                f"context_viewpoints have d={dc} but target_viewpoints d={d}: "
                "one viewpoint encoder per batch"
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
        target_images: torch.Tensor,
        target_viewpoints: torch.Tensor,
    ) -> QueryBatch:
        """A batch in which every context and target slot holds a real view."""
        (b, k), n = context_images.shape[:2], target_images.shape[1]
        device = context_images.device
        context_mask = torch.ones(b, k, dtype=torch.bool, device=device)
        target_mask = torch.ones(b, n, dtype=torch.bool, device=device)
        return QueryBatch(
            context_images,
            context_viewpoints,
            context_mask,
            target_images,
            target_viewpoints,
            target_mask,
        )
