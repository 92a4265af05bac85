"""The interface every scene model shares (GQN now; CGQN and multi-scale generators later), so
one trainer, evaluator and sampler serve them all."""

from __future__ import annotations

import abc

import torch
from torch import nn

from gqn.batch import QueryBatch
from gqn.losses import ELBOTerms


class SceneModel(nn.Module, abc.ABC):
    """A model of p(x^q | v^q, context) trained by maximising an ELBO.

    Shapes: context_images (b, k, c, s, s), context_viewpoints (b, k, 7), context_mask (b, k) bool,
    query_viewpoint (b, 7); images are float in [0, 1].
    """

    image_size: int

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
        """(b, c, s, s) mean image in [0, 1], latents from the posterior (sees the query image)."""

    @abc.abstractmethod
    def generate(
        self,
        r: torch.Tensor,
        query_viewpoints: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(b, n, c, s, s) mean images in [0, 1], latents from the prior, for (b, n, 7) query
        viewpoints given r."""

    def sample(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        query_viewpoint: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(b, num_samples, c, s, s) mean images with latents drawn from the prior."""
        r = self.represent(context_images, context_viewpoints, context_mask)
        return self.sample_at(r, query_viewpoint, num_samples, generator)

    def sample_at(
        self,
        r: torch.Tensor,
        query_viewpoint: torch.Tensor,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(b, num_samples, c, s, s) prior samples at one (b, 7) viewpoint per scene, given r."""
        b = query_viewpoint.shape[0]
        queries = query_viewpoint[:, None].expand(b, num_samples, query_viewpoint.shape[-1])
        return self.generate(r, queries, generator)
