"""The Generative Query Network (Eslami et al., Science 2018; thesis ch. 4).

A representation network turns context views into r = sum_k f(x_k, v_k) (eq 4.4; or their mean,
``GQNConfig.aggregation``); a conditional conv-DRAW generator renders the query view from
[v^q, r] (eqs 4.5-4.10); an inference network gives the posterior for training (eqs 4.11-4.16);
the loss is the negative ELBO (eq 4.17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from gqn.batch import QueryBatch
from gqn.losses import ELBOTerms, gaussian_nll, squared_error, sum_targets
from gqn.models.base import SceneModel
from gqn.models.draw import HIDDEN_SCALE, ConditionalDRAW, CoreWeights, DrawOutput
from gqn.models.rays import PoseEncoding, RayMap
from gqn.models.registry import ModelConfig, register_model
from gqn.models.representation import Reduction, aggregate, make_representation
from gqn.viewpoint import CAMERA


@dataclass
class GQNConfig(ModelConfig):
    """GQN hyper-parameters; the defaults are the paper's (64x64, tower, L = 12, h = 128).

    ``viewpoint_dim``: d, the size of the dataset's viewpoint encoding (:mod:`gqn.viewpoint`;
    7 for camera poses).

    ``core_weights``: ``"shared"`` reuses one generator core, inference core, prior/posterior
    heads and canvas UpConv at all L steps; ``"per_step"`` gives each step its own (the paper
    writes pi_{theta_l}). The default is ``"shared"``: the thesis (§4.1) argues the weights must be
    shared across steps, the parameter count then does not grow with L, and the step is the same
    recurrent function at every l, as in DRAW.

    ``aggregation``: ``"sum"`` (eq 4.4, default) or ``"mean"`` of the per-view r_k. The sum grows
    linearly with the number of context views K; the mean keeps r's scale for any K, so a model
    trained with K <= 5 can be queried with K = 14 (docs/model.md has the gate-saturation probe).

    ``pose_encoding``: ``"broadcast"`` (the paper: v repeated over every cell) or ``"rays"``
    (camera viewpoints only: also the Plücker coordinates of each cell's ray,
    :mod:`gqn.models.rays`), for the query in the DRAW cores and the context views in the
    representation; ``fov_deg`` is the cameras' horizontal field of view, which the rays need
    (the data's: 45 for our Shepard-Metzler, 60 for our rooms).

    ``precompute_constant_inputs`` computes the gate contribution of the inputs that are constant
    for all L steps (v^q, r, x^q) once per query; ``False`` is the straightforward reference path
    (same function, ~2x the FLOPs). It changes speed only, never results.
    """

    name: str = "gqn"
    image_size: int = 64
    image_channels: int = 3
    viewpoint_dim: int = CAMERA.dim
    representation: Literal["pyramid", "tower", "pool"] = "tower"
    r_channels: int = 256
    hidden_channels: int = 128
    canvas_channels: int = 128
    latent_channels: int = 3
    num_steps: int = 12
    core_weights: CoreWeights = "shared"
    kernel_size: int = 5
    pose_encoding: PoseEncoding = "broadcast"
    fov_deg: float = 45.0
    precompute_constant_inputs: bool = True
    aggregation: Reduction = "sum"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_architecture(
            (
                "image_channels",
                "r_channels",
                "hidden_channels",
                "canvas_channels",
                "latent_channels",
                "num_steps",
                "viewpoint_dim",
            )
        )
        RayMap(self.pose_encoding, self.fov_deg, self.viewpoint_dim)  # checks the three


@register_model("gqn")
class GQN(SceneModel):
    """Each target view has latents of its own (``consistent = False``): S samples of n views
    are S * n independent runs of the DRAW prior."""

    config_class = GQNConfig

    def __init__(self, config: GQNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GQNConfig()
        self._build_representation(config)
        self.draw = ConditionalDRAW(
            num_steps=config.num_steps,
            cond_channels=self.pose_map.channels + config.r_channels,
            image_channels=config.image_channels,
            latent_channels=config.latent_channels,
            hidden_channels=config.hidden_channels,
            canvas_channels=config.canvas_channels,
            kernel_size=config.kernel_size,
            core_weights=config.core_weights,
            precompute_constant=config.precompute_constant_inputs,
        )

    def _build_representation(self, config: GQNConfig) -> None:
        """The parts every GQN-style model shares before its generator: the viewpoint map and
        the representation network f (multi-scale generators reuse them)."""
        self.image_size = config.image_size
        self.viewpoint_dim = config.viewpoint_dim
        self.pose_map = RayMap(config.pose_encoding, config.fov_deg, config.viewpoint_dim)
        self.representation = make_representation(
            config.representation,
            config.image_size,
            config.image_channels,
            config.r_channels,
            self.pose_map,
        )

    @classmethod
    def tiny_config(cls) -> GQNConfig:
        # pragma: no mutate block -- a contract-test fixture, no equation (docs/testing.md)
        return GQNConfig(
            image_size=16,
            representation="tower",
            r_channels=8,
            hidden_channels=8,
            canvas_channels=8,
            latent_channels=2,
            num_steps=3,
            kernel_size=3,
        )

    def ddp_find_unused_parameters(self, min_context: int) -> bool:
        """A step with K = 0 never calls the representation network."""
        return min_context == 0

    @property
    def hidden_size(self) -> int:
        return self.image_size // HIDDEN_SCALE

    def represent(
        self,
        context_images: torch.Tensor,
        context_viewpoints: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """r (b, r_channels, rs, rs): rs = s/4 for the tower, 1 for pool and pyramid (eq 4.4)."""
        context_mask = self.check_views(context_images, context_viewpoints, context_mask, "context")
        return aggregate(
            self.representation,
            context_images,
            context_viewpoints,
            context_mask,
            self.config.aggregation,
        )

    def condition(self, r: torch.Tensor, query_viewpoint: torch.Tensor) -> torch.Tensor:
        """[v^q, r] at the hidden resolution (m, p + r_channels, s/4, s/4) for m queries:
        r (m, r_channels, 1 or s/4, same), query_viewpoint (m, d); p = d, or 7 + 6 with the
        cells' rays (``pose_encoding="rays"``).

        v^q and a 1x1 r are broadcast by ``expand`` (repetition), never by learned layers.
        """
        size = self.hidden_size
        b, d = query_viewpoint.shape[0], self.viewpoint_dim
        if query_viewpoint.shape != (b, d):
            raise ValueError(
                f"query_viewpoint must be (b, {d}), got {tuple(query_viewpoint.shape)}"
            )
        self._check_r(r, b)
        v = self.pose_map(query_viewpoint, size, size)
        r = r.expand(b, r.shape[1], size, size)
        return torch.cat([v, r], dim=1)

    def conditioning(
        self, r: torch.Tensor, query_viewpoint: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(cond, u_0): :meth:`condition`'s [v^q, r] and the generator's initial canvas u_0
        (m, canvas_channels, s, s), or None for the GQN's zero canvas."""
        return self.condition(r, query_viewpoint), None

    def _check_r(self, r: torch.Tensor, m: int) -> None:
        """Refuse an r that would broadcast silently: exactly (m, r_channels, 1, 1) or
        (m, r_channels, s/4, s/4) for m queries (never batch 1 for m, never (m, C, s/4, 1))."""
        channels, size = self.config.r_channels, self.hidden_size
        if tuple(r.shape) not in ((m, channels, 1, 1), (m, channels, size, size)):
            raise ValueError(
                f"r must be (m={m}, {channels}, 1, 1) or (m={m}, {channels}, {size}, {size}) for "
                f"m queries: one r per scene from represent(), got {tuple(r.shape)} after "
                "repeating it for each query"
            )

    @staticmethod
    def _per_view(r: torch.Tensor, m: int) -> torch.Tensor:
        """r (b, ...) repeated for the m views of each scene: (b * m, ...), scene-major."""
        return r[:, None].expand(r.shape[0], m, *r.shape[1:]).flatten(0, 1)

    def _posterior(self, batch: QueryBatch, r: torch.Tensor | None = None) -> DrawOutput:
        """One posterior pass over the b * n targets (scene-major), each with latents of its own."""
        self.check_views(batch.target_images, batch.target_viewpoints, batch.target_mask, "target")
        if r is None:
            r = self.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
        cond, canvas = self.conditioning(
            self._per_view(r, batch.num_targets), batch.target_viewpoints.flatten(0, 1)
        )
        return self.draw.posterior_pass(cond, batch.target_images.flatten(0, 1), canvas=canvas)

    def elbo(self, batch: QueryBatch, sigma: float, r: torch.Tensor | None = None) -> ELBOTerms:
        """Negative ELBO terms (eq 4.17) of every target, with pixel standard deviation
        ``sigma``; KL group ``"draw"`` (b, L) summed over the valid targets; ``r`` as in
        :meth:`SceneModel.elbo`."""
        out = self._posterior(batch, r)
        mean = self.draw.observation(out.canvas)
        targets = batch.target_images.flatten(0, 1)
        per_target = (batch.num_scenes, batch.num_targets)
        kl = sum_targets(out.kl_per_step.unflatten(0, per_target), batch.target_mask)
        return ELBOTerms(
            gaussian_nll(targets, mean, sigma).unflatten(0, per_target),
            {"draw": kl},
            batch.target_mask,
            num_dims=mean[0].numel(),
            mean=mean.unflatten(0, per_target),
            squared_error_per_target=squared_error(targets, mean).unflatten(0, per_target),
        )

    def reconstruct(self, batch: QueryBatch) -> torch.Tensor:
        images = self.draw.observation(self._posterior(batch).canvas).clamp(0, 1)
        return images.unflatten(0, (batch.num_scenes, batch.num_targets))

    def prior_means(
        self,
        r: torch.Tensor,
        viewpoints: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """(b, S, n, c, s, s): S * n independent prior passes per scene, run (and their noise
        drawn) in (scene, view, sample) order; r is shared by all of a scene's, and the
        conditioning [v^q, r] of a view by all its samples (computed once per view)."""
        b, n = viewpoints.shape[:2]
        cond, canvas = self.conditioning(self._per_view(r, n), viewpoints.flatten(0, 1))
        cond, canvas = (
            None if x is None else x[:, None].expand(b * n, num_samples, *x.shape[1:]).flatten(0, 1)
            for x in (cond, canvas)
        )
        out = self.draw.prior_pass(cond, generator, canvas=canvas)
        images = self.draw.observation(out.canvas).clamp(0, 1)
        return images.unflatten(0, (b, n, num_samples)).transpose(1, 2)
