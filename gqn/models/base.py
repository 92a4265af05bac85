"""The interface every scene model shares (GQN now; CGQN and multi-scale generators later), so
one trainer, evaluator and sampler serve them all (docs/architecture.md)."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn

from gqn.batch import QueryBatch
from gqn.losses import ELBOTerms
from gqn.models.registry import ModelConfig


class SceneModel(nn.Module, abc.ABC):
    """A model of p(x^q | v^q, context) trained by maximising an ELBO.

    Shapes: context_images (b, k, c, s, s), context_viewpoints (b, k, d), context_mask (b, k)
    bool; target viewpoints (b, n, d); images are float in [0, 1]; d = ``viewpoint_dim``.

    Class attributes: ``name`` (set by :func:`gqn.models.registry.register_model`),
    ``config_class`` (its :class:`ModelConfig`), ``consistent``: True for a model with a scene
    latent, whose n views of one sample come from one draw of it; False (the GQN) when every
    view is drawn independently.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]
    consistent: ClassVar[bool] = False
    scene_code: ClassVar[bool] = True
    image_size: int
    viewpoint_dim: int

    @classmethod
    @abc.abstractmethod
    def tiny_config(cls) -> ModelConfig:
        """A config small enough for the contract tests (tests/test_model_contract.py)."""

    def ddp_find_unused_parameters(self, min_context: int) -> bool:
        """Whether DistributedDataParallel must look for parameters without a gradient in a
        step, when batches may have as few as ``min_context`` context views."""
        return False

    @abc.abstractmethod
    def represent(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The scene representation r of each scene's context views."""

    @abc.abstractmethod
    def elbo(self, batch: QueryBatch, sigma: float, r: torch.Tensor | None = None) -> ELBOTerms:
        """The terms of the negative ELBO at pixel standard deviation ``sigma`` (training).

        ``r``: the representation of the batch's context when the caller already has it
        (:meth:`represent`), so that evaluation computes it once for the ELBO and the samples.
        """

    def forward(self, batch: QueryBatch, sigma: float) -> ELBOTerms:
        return self.elbo(batch, sigma)

    @abc.abstractmethod
    def reconstruct(self, batch: QueryBatch) -> torch.Tensor:
        """(b, n, c, s, s) mean images in [0, 1] of the targets, latents from the posterior
        (which sees the target images)."""

    @abc.abstractmethod
    def prior_means(
        self,
        r: torch.Tensor,
        viewpoints: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """(b, S, n, c, s, s) mean images in [0, 1] with latents from the prior (the contract of
        :meth:`generate`, whose checks have been made)."""

    def check_views(
        self,
        images: torch.Tensor,
        viewpoints: torch.Tensor,
        mask: torch.Tensor | None,
        what: str,
    ) -> torch.Tensor:
        """Check a set of views, images (b, m, c, s, s) with viewpoints (b, m, d) and mask
        (b, m) bool or None, against this model; return the mask (all True when None).
        ``what`` names the set in the errors (``"context"``, ``"target"``)."""
        c, s, d = self.config.image_channels, self.image_size, self.viewpoint_dim
        if images.dim() != 5 or images.shape[-3:] != (c, s, s):
            raise ValueError(
                f"{what}_images must be (b, m, {c}, {s}, {s}) for this model (image_size={s}), "
                f"got {tuple(images.shape)}"
            )
        b, m = images.shape[:2]
        if viewpoints.shape != (b, m, d):
            raise ValueError(
                f"{what}_viewpoints must be (b={b}, m={m}, {d}) encoded viewpoints "
                f"(encode raw poses with gqn.viewpoint's encoders), got {tuple(viewpoints.shape)}"
            )
        if mask is None:
            return torch.ones(b, m, dtype=torch.bool, device=images.device)
        if mask.shape != (b, m) or mask.dtype != torch.bool:
            raise ValueError(
                f"{what}_mask must be a bool ({b}, {m}) tensor, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        return mask

    def generate(
        self,
        r: torch.Tensor,
        viewpoints: torch.Tensor,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        return_sample: bool = False,
        sigma: float | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """S = ``num_samples`` prior samples of the n views ``viewpoints`` (b, n, d) of each scene
        whose representation is r: (b, S, n, c, s, s) mean images in [0, 1].

        Within one sample the n views come from one draw of the latents when the model is
        ``consistent``, from independent draws otherwise. With ``return_sample`` also returns
        x ~ N(mean, sigma^2) (not clamped), its noise drawn from ``generator`` after the
        latents'.
        """
        if viewpoints.dim() != 3 or viewpoints.shape[-1] != self.viewpoint_dim:
            raise ValueError(
                f"viewpoints must be (b, n, {self.viewpoint_dim}), got {tuple(viewpoints.shape)}"
            )
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if return_sample and (sigma is None or sigma <= 0):
            raise ValueError(f"return_sample needs a pixel sigma > 0, got {sigma}")
        means = self.prior_means(r, viewpoints, num_samples, generator)
        if not return_sample:
            return means
        noise = torch.randn(
            means.shape, generator=generator, dtype=means.dtype, device=means.device
        )
        return means, means + sigma * noise

    def sample(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(b, S, n, c, s, s) prior mean images of the views ``viewpoints`` (b, n, d) given the
        context: :meth:`represent` then :meth:`generate`."""
        r = self.represent(context_images, context_viewpoints, context_mask)
        return self.generate(r, viewpoints, num_samples, generator)
