"""The Consistent Generative Query Network (Kumar et al. 2018, §3, appendices A-B).

    r   = agg_k f(x_k, v_k)                       context representation (masked mean or sum)
    e_T = agg_t f(x_t, v_t)                       target encoding (same f, target mask)
    z   ~ p(z | r)        (sampling)              conv-DRAW prior, ONE latent per scene
    z   ~ q(z | r, e_T)   (training)              conv-DRAW posterior
    x_t = g(r, z, v_t) + N(0, sigma^2)            deterministic renderer, every target view t

    ELBO = sum_t log N(x_t | g(r, z, v_t), sigma^2) - KL[q(z | r, e_T) || p(z | r)]   (app. A)

The KL is counted once per scene (group ``"scene"``, one entry per DRAW step), whatever the
number of targets n; the NLL once per valid target. Modules: :mod:`gqn.models.frame_encoder`
(f), :mod:`gqn.models.latent_draw` (p and q), :mod:`gqn.models.rendering` (g).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gqn.batch import QueryBatch
from gqn.losses import ELBOTerms, gaussian_nll, squared_error
from gqn.models.base import SceneModel
from gqn.models.frame_encoder import ENCODER_CHANNELS, FrameEncoder
from gqn.models.latent_draw import SceneLatentDRAW
from gqn.models.registry import ModelConfig, register_model
from gqn.models.rendering import RenderingNetwork
from gqn.models.representation import Reduction, aggregate
from gqn.viewpoint import CAMERA


@dataclass
class CGQNConfig(ModelConfig):
    """CGQN hyper-parameters; defaults are appendix B's Traveling Salesman table (the MNIST-cube
    variant: ``num_steps=6, nf_to_hidden=128, nf_dec=128``; configs/cgqn/).

    ``num_steps`` (nt) is the number of DRAW steps of the latent prior/posterior and of the
    renderer; ``nf_*`` as in the appendix (docs/cgqn.md); ``kernel_size`` of the LSTM, head and
    nf_enc convolutions (the appendix's value is lost; 5 as the GQN's). ``aggregation`` of the
    per-view encodings, context and targets alike: ``"mean"`` (default) keeps r and e_T at one
    scale for any number of views, so the posterior's input does not grow with n.
    ``latent``: False drops the scene latent (the deterministic baseline, the role CDNA plays in
    §4.1): g renders each view from (r, v_t) alone, the KL is 0 and all samples are equal.
    """

    name: str = "cgqn"
    image_size: int = 64
    image_channels: int = 3
    viewpoint_dim: int = CAMERA.dim
    num_steps: int = 4
    nf_to_hidden: int = 64
    nf_enc: int = 128
    nf_to_obs: int = 128
    nf_dec: int = 64
    nf_z: int = 3
    kernel_size: int = 5
    aggregation: Reduction = "mean"
    latent: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_architecture(
            (
                "image_channels",
                "viewpoint_dim",
                "num_steps",
                "nf_to_hidden",
                "nf_enc",
                "nf_to_obs",
                "nf_dec",
                "nf_z",
            )
        )


@register_model("cgqn")
class CGQN(SceneModel):
    """One scene latent z renders all n targets of a sample (``consistent = True``)."""

    config_class = CGQNConfig
    consistent = True

    def __init__(self, config: CGQNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or CGQNConfig()
        self.image_size = config.image_size
        self.viewpoint_dim = config.viewpoint_dim
        self.encoder = FrameEncoder(config.image_size, config.image_channels, config.viewpoint_dim)
        self.latent = (
            SceneLatentDRAW(
                config.num_steps,
                ENCODER_CHANNELS,
                config.nf_enc,
                config.nf_to_hidden,
                config.nf_z,
                config.kernel_size,
            )
            if config.latent
            else None
        )
        self.renderer = RenderingNetwork(
            config.num_steps,
            ENCODER_CHANNELS + self.latent_channels + config.viewpoint_dim,
            config.image_channels,
            config.nf_enc,
            config.nf_to_hidden,
            config.nf_to_obs,
            config.nf_dec,
            config.kernel_size,
        )

    @classmethod
    def tiny_config(cls) -> CGQNConfig:
        return CGQNConfig(
            image_size=16,
            num_steps=2,
            nf_to_hidden=8,
            nf_enc=8,
            nf_to_obs=8,
            nf_dec=8,
            nf_z=2,
            kernel_size=3,
        )

    @property
    def latent_channels(self) -> int:
        """Channels of z = [z_1, ..., z_nt]: nt * nf_z (0 without a latent)."""
        return self.config.num_steps * self.config.nf_z if self.latent is not None else 0

    def _no_latent(self, r: torch.Tensor) -> torch.Tensor:
        """The empty z (b, 0, H, W) of a model without a latent."""
        return r.new_zeros(r.shape[0], 0, *r.shape[2:])

    def ddp_find_unused_parameters(self, min_context: int) -> bool:
        """The posterior DRAW sits out no step, and the encoder always sees the targets."""
        return False

    def _encode(
        self, images: torch.Tensor, viewpoints: torch.Tensor, mask: torch.Tensor | None, what: str
    ) -> torch.Tensor:
        """Masked aggregate of f over the views: images (b, m, c, s, s), viewpoints (b, m, d),
        mask (b, m) bool or None (all) -> (b, 32, s/4, s/4)."""
        mask = self.check_views(images, viewpoints, mask, what)
        return aggregate(self.encoder, images, viewpoints, mask, self.config.aggregation)

    def represent(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """r (b, 32, s/4, s/4): the masked aggregate of f over the context views."""
        return self._encode(context_images, context_viewpoints, context_mask, "context")

    def render(self, r: torch.Tensor, z: torch.Tensor, viewpoints: torch.Tensor) -> torch.Tensor:
        """Means (b, n, c, s, s) of the n views ``viewpoints`` (b, n, d) of scenes with
        representation r (b, 32, H, W) and latent z (b, nt * nf_z, H, W): one renderer pass per
        view, all b * n batched; every view of a scene reads the same z."""
        b, n, _ = viewpoints.shape

        def per_view(t: torch.Tensor) -> torch.Tensor:
            return t[:, None].expand(b, n, *t.shape[1:]).flatten(0, 1)

        means = self.renderer(per_view(r), per_view(z), viewpoints.flatten(0, 1))
        return means.unflatten(0, (b, n))

    def _posterior(
        self, batch: QueryBatch, r: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(r, z ~ q(z | r, e_T), KL per step (b, nt)); without a latent (r, empty z, zero KL
        (b, 1))."""
        if r is None:
            r = self.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
        if self.latent is None:
            return r, self._no_latent(r), r.new_zeros(r.shape[0], 1)
        e_t = self._encode(
            batch.target_images, batch.target_viewpoints, batch.target_mask, "target"
        )
        z, kl = self.latent.posterior_pass(r, e_t)
        return r, z, kl

    def elbo(self, batch: QueryBatch, sigma: float, r: torch.Tensor | None = None) -> ELBOTerms:
        """Negative ELBO terms (appendix A) at pixel standard deviation ``sigma``: NLL of every
        target (b, n) rendered from one posterior z per scene; KL group ``"scene"`` (b, nt)."""
        r, z, kl = self._posterior(batch, r)
        mean = self.render(r, z, batch.target_viewpoints)
        targets, flat_mean = batch.target_images.flatten(0, 1), mean.flatten(0, 1)
        per_target = (batch.num_scenes, batch.num_targets)
        return ELBOTerms(
            gaussian_nll(targets, flat_mean, sigma).unflatten(0, per_target),
            {"scene": kl},
            batch.target_mask,
            num_dims=flat_mean[0].numel(),
            mean=mean,
            squared_error_per_target=squared_error(targets, flat_mean).unflatten(0, per_target),
        )

    def reconstruct(self, batch: QueryBatch) -> torch.Tensor:
        r, z, _ = self._posterior(batch, None)
        return self.render(r, z, batch.target_viewpoints).clamp(0, 1)

    def prior_means(
        self,
        r: torch.Tensor,
        viewpoints: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """(b, S, n, c, s, s): S draws of z ~ p(z | r) per scene (scene-major), each rendering
        all n views."""
        b = viewpoints.shape[0]
        r_s = r[:, None].expand(b, num_samples, *r.shape[1:]).flatten(0, 1)
        z = self._no_latent(r_s) if self.latent is None else self.latent.prior_pass(r_s, generator)
        v_s = viewpoints[:, None].expand(b, num_samples, *viewpoints.shape[1:]).flatten(0, 1)
        means = self.render(r_s, z, v_s).clamp(0, 1)
        return means.unflatten(0, (b, num_samples))
