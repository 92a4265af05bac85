"""GQN with a multi-scale generator (thesis §4.1.4, §5.2): DRAW layers of doubling resolution.

The representation network, r and the query viewpoint are the GQN's (:mod:`gqn.models.gqn`);
the one DRAW layer is replaced by :class:`~gqn.models.multiscale_generator.MultiScaleGenerator`,
layer i at s_i = s / 2^(L-1-i) (hidden state at s_i / 4). Layer i's inputs are brought to its
size: the query image by bilinear halving (:mod:`gqn.models.pyramid`), r by the same halving (a
1x1 r is repeated), v^q broadcast (or its rays) at the layer's hidden resolution.

Negative ELBO (eq 4.17 with one KL group per layer and one or L NLL terms):

    F = sum_{i in N} -ln N(t_i | mu_i, sigma) + sum_i sum_{l <= T_i} KL[q^i_l || pi^i_l]

N = {L-1} (``nll="last"``) or all layers (``nll="every"``); mu_i and t_i: :meth:`means
<gqn.models.multiscale_generator.MultiScaleGenerator.means>` and :meth:`MultiScaleGQN.targets`;
the last layer always scores the model's image against x. The thesis' models (§5.2.1):

| model | canvas | canvas_upsample | layer_input | nll |
|---|---|---|---|---|
| 1 | shared | bilinear | image | last |
| 2 | shared | upconv | image | last |
| 3 / 4 | own | upconv | image | every / last |
| 5 / 6 | own | upconv | detail | every / last |

Model 0 is the plain GQN (``model.name: gqn``). docs/multiscale.md has the choices where the
thesis is silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from gqn.batch import QueryBatch
from gqn.losses import ELBOTerms, gaussian_nll, squared_error, sum_targets
from gqn.models.base import SceneModel
from gqn.models.gqn import GQN, HIDDEN_SCALE, GQNConfig
from gqn.models.multiscale_generator import LayerPass, MultiScaleGenerator
from gqn.models.pyramid import down, high_frequency, image_pyramid
from gqn.models.registry import register_model


@dataclass
class MultiScaleConfig(GQNConfig):
    """A GQN config (every key of :class:`GQNConfig` means the same) plus the layers.

    ``layers``: steps T_i of each DRAW layer, coarsest first (thesis: (2, 4, 6)); the scale
    factor between layers is 2 and the last is at ``image_size``, so image_size must be a
    multiple of 4 * 2^(L-1). ``num_steps`` is always sum(layers) (any value given is replaced).
    ``canvas``: ``"shared"`` (type 1) or ``"own"`` (type 2). ``canvas_upsample``: the type-1 canvas
    hand-over, ``"bilinear"`` (model 1) or ``"upconv"`` (model 2; type 2 always uses upconv).
    ``layer_input`` (type 2): ``"image"`` x_i (models 3, 4) or ``"detail"`` y_i = x_i - up(x_{i-1})
    (models 5, 6). ``nll``: ``"last"`` or ``"every"`` layer's NLL in the loss. Defaults: the
    thesis' §5.2.1 settings (z 16, r 256, h/c/u 128, pool) as model 2.
    """

    name: str = "multiscale"
    representation: Literal["pyramid", "tower", "pool"] = "pool"
    latent_channels: int = 16
    layers: tuple[int, ...] = (2, 4, 6)
    canvas: Literal["shared", "own"] = "shared"
    canvas_upsample: Literal["bilinear", "upconv"] = "upconv"
    layer_input: Literal["image", "detail"] = "image"
    nll: Literal["last", "every"] = "last"

    def __post_init__(self) -> None:
        self.layers = tuple(self.layers)
        if not self.layers or any(t < 1 for t in self.layers):
            raise ValueError(
                f"model.layers must list each layer's DRAW steps, all >= 1 (e.g. [2, 4, 6]), "
                f"got {list(self.layers)}"
            )
        self.num_steps = sum(self.layers)
        super().__post_init__()
        smallest = HIDDEN_SCALE * 2 ** (len(self.layers) - 1)
        if self.image_size % smallest != 0:
            raise ValueError(
                f"model.image_size {self.image_size} does not divide into {len(self.layers)} "
                f"layers: it must be a multiple of 4 * 2^{len(self.layers) - 1} = {smallest} "
                f"(each layer halves the resolution, its hidden state is 1/4 of it); use fewer "
                f"layers or a larger image"
            )
        if self.canvas == "own" and self.canvas_upsample != "upconv":
            raise ValueError("model.canvas_upsample='bilinear' needs model.canvas='shared'")
        if self.canvas == "shared" and self.layer_input != "image":
            raise ValueError("model.layer_input='detail' needs model.canvas='own' (type 2)")


@register_model("multiscale")
class MultiScaleGQN(GQN):
    """The GQN's representation, checks and sampling order; a chain of DRAW layers renders.

    KL groups ``layer0`` ... ``layer{L-1}``, each (b, T_i); images (b, n, c, s, s) as the GQN's.
    """

    config_class = MultiScaleConfig

    def __init__(self, config: MultiScaleConfig | None = None) -> None:
        SceneModel.__init__(self)  # GQN.__init__ would build the one-layer DRAW
        self.config = config = config or MultiScaleConfig()
        self._build_representation(config)
        self.generator = MultiScaleGenerator(
            steps=config.layers,
            cond_channels=self.pose_map.channels + config.r_channels,
            image_channels=config.image_channels,
            latent_channels=config.latent_channels,
            hidden_channels=config.hidden_channels,
            canvas_channels=config.canvas_channels,
            kernel_size=config.kernel_size,
            core_weights=config.core_weights,
            precompute_constant=config.precompute_constant_inputs,
            shared_canvas=config.canvas == "shared",
            canvas_upsample=config.canvas_upsample,
        )

    @classmethod
    def tiny_config(cls) -> MultiScaleConfig:
        return MultiScaleConfig(
            image_size=16,
            representation="tower",
            r_channels=8,
            hidden_channels=8,
            canvas_channels=8,
            latent_channels=2,
            layers=(1, 2),
            kernel_size=3,
        )

    @property
    def num_layers(self) -> int:
        return len(self.config.layers)

    def conditions(self, r: torch.Tensor, query_viewpoint: torch.Tensor) -> list[torch.Tensor]:
        """[v^q, r] at each layer's hidden resolution, coarsest first: (m, p + r, s_i/4, same)
        for m queries; r (m, r_channels, 1 or s/4, same) halved bilinearly per layer."""
        full = self.condition(r, query_viewpoint)  # checks r and v; the last layer's
        conds = [full]
        r_i = r
        for i in range(self.num_layers - 1):
            size = full.shape[-1] // 2 ** (i + 1)
            r_i = r_i if r_i.shape[-1] == 1 else down(r_i)
            v = self.pose_map(query_viewpoint, size, size)
            conds.insert(0, torch.cat([v, r_i.expand(*r_i.shape[:2], size, size)], dim=1))
        return conds

    def layer_inputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's query image, coarsest first (m, c, s_i, s_i): x_i, or y_i with
        ``layer_input="detail"`` (y_0 = x_0)."""
        pyramid = image_pyramid(images, self.num_layers)
        return high_frequency(pyramid) if self.config.layer_input == "detail" else pyramid

    def _scored(
        self, batch: QueryBatch, sigma: float, r: torch.Tensor | None
    ) -> tuple[list[LayerPass], torch.Tensor, torch.Tensor]:
        """The posterior pass over the b * n targets (scene-major): the layers' passes, the
        image means (m, c, s, s) and each layer's NLL (m, L): layer i < L-1 scores its input
        under its mean, the last layer x under the model's image."""
        self.check_views(batch.target_images, batch.target_viewpoints, batch.target_mask, "target")
        if r is None:
            r = self.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
        images = batch.target_images.flatten(0, 1)
        conds = self.conditions(
            self._per_view(r, batch.num_targets), batch.target_viewpoints.flatten(0, 1)
        )
        inputs = self.layer_inputs(images)
        passes = self.generator(conds, inputs)
        means = self.generator.means(passes)
        targets = [*inputs[:-1], images]
        nll = [gaussian_nll(t, mu, sigma) for t, mu in zip(targets, means, strict=True)]
        return passes, means[-1], torch.stack(nll, dim=1)

    def layer_nll(
        self, batch: QueryBatch, sigma: float, r: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(b, n, L) each layer's NLL in nats (as :meth:`elbo` counts them with ``nll="every"``),
        whichever layers the loss counts."""
        return self._scored(batch, sigma, r)[2].unflatten(0, (batch.num_scenes, batch.num_targets))

    def elbo(self, batch: QueryBatch, sigma: float, r: torch.Tensor | None = None) -> ELBOTerms:
        """Negative ELBO terms (module docstring) at pixel standard deviation ``sigma``: NLL of
        the last layer or the sum over layers; KL groups ``layer<i>`` (b, T_i) summed over the
        valid targets; ``r`` as in :meth:`SceneModel.elbo`."""
        passes, mean, layer_nll = self._scored(batch, sigma, r)
        nll = layer_nll.sum(1) if self.config.nll == "every" else layer_nll[:, -1]
        per_target = (batch.num_scenes, batch.num_targets)
        kl_groups = {
            f"layer{i}": sum_targets(p.draw.kl_per_step.unflatten(0, per_target), batch.target_mask)
            for i, p in enumerate(passes)
        }
        targets = batch.target_images.flatten(0, 1)
        return ELBOTerms(
            nll.unflatten(0, per_target),
            kl_groups,
            batch.target_mask,
            num_dims=mean[0].numel(),
            mean=mean.unflatten(0, per_target),
            squared_error_per_target=squared_error(targets, mean).unflatten(0, per_target),
        )

    def reconstruct(self, batch: QueryBatch) -> torch.Tensor:
        mean = self._scored(batch, 1.0, None)[1].clamp(0, 1)
        return mean.unflatten(0, (batch.num_scenes, batch.num_targets))

    def prior_means(
        self,
        r: torch.Tensor,
        viewpoints: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """(b, S, n, c, s, s): S * n independent prior passes of all layers per scene, in
        (scene, view, sample) order as the GQN's."""
        b, n, d = viewpoints.shape
        queries = viewpoints[:, :, None].expand(b, n, num_samples, d).flatten(0, 2)
        conds = self.conditions(self._per_view(r, n * num_samples), queries)
        images = self.generator.means(self.generator(conds, None, generator))[-1].clamp(0, 1)
        return images.unflatten(0, (b, n, num_samples)).transpose(1, 2)

    @torch.no_grad()
    def layer_images(
        self, batch: QueryBatch, posterior: bool, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """What each layer drew (thesis figs 5.10-5.15), for the targets of ``batch``: L tensors
        (b, n, c, s_i, s_i), coarsest first, then the model's image (b, n, c, s, s), all
        unclamped; latents from the posterior (reconstructions) or one prior sample."""
        if posterior:
            passes = self._scored(batch, 1.0, None)[0]
        else:
            r = self.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
            conds = self.conditions(
                self._per_view(r, batch.num_targets), batch.target_viewpoints.flatten(0, 1)
            )
            passes = self.generator(conds, None, generator)
        images = [*self.generator.layer_images(passes), self.generator.means(passes)[-1]]
        return [x.unflatten(0, (batch.num_scenes, batch.num_targets)) for x in images]
