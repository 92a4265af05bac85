"""The chain of DRAW layers of a multi-scale generator (thesis §4.1.4, figs 4.12-4.13, §5.2.1).

Layer i (i = 0 the coarsest) is a :class:`~gqn.models.draw.ConditionalDRAW` with T_i steps and
weights of its own, at resolution s_i = s / 2^(L-1-i), hidden state at s_i / 4. It is
conditioned on ``cond_i`` = [v^q, r] at its hidden resolution and, from layer 1 on, on what the
previous layer hands over (a constant input of all its T_i steps):

    type 1 (shared canvas):  u^i_0 = up(u^{i-1}_T)                 bilinear (model 1) or
                                                                    UpConv_2 (model 2)
                             cond_i += UpConv_2(h^{i-1}_T)          the last hidden state
    type 2 (own canvases):   u^i_0 = 0
                             cond_i += Down_4(UpConv_2(u^{i-1}_T))  the last canvas

UpConv_2 is a 2x2 stride-2 transposed convolution; Down_4 the 4x4 stride-4 convolution that
brings a canvas to the hidden resolution, as the inference network does (eq 4.12). The posterior
pass runs every layer on posterior latents, the prior pass on prior latents, so layer i's prior
and posterior see the previous layers through these inputs only (a top-down hierarchy; the KL of
layer i is taken at the z of layers < i drawn from q, which keeps the ELBO exact).

Images: type 1 reads the shared canvas with the last layer's observation head eta; type 2 has a
head per layer and the image is the sum of the layers' outputs, each brought to full resolution
(:func:`gqn.models.pyramid.collapse`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.draw import ConditionalDRAW, CoreWeights, DrawOutput
from gqn.models.pyramid import collapse, up


@dataclass
class LayerPass:
    """One layer's pass: ``initial`` u^i_0 (b, canvas, s_i, s_i) or None (zero), ``draw`` its
    :class:`DrawOutput` (``canvas`` u^i_T, ``hidden`` h^i_T, ``kl_per_step`` (b, T_i))."""

    initial: torch.Tensor | None
    draw: DrawOutput


class MultiScaleGenerator(nn.Module):
    """L DRAW layers; ``steps`` = (T_0, ..., T_{L-1}); ``shared_canvas`` picks type 1 or 2;
    ``canvas_upsample`` ("bilinear" or "upconv") the type-1 canvas hand-over."""

    def __init__(
        self,
        steps: tuple[int, ...],
        cond_channels: int,
        image_channels: int,
        latent_channels: int,
        hidden_channels: int,
        canvas_channels: int,
        kernel_size: int,
        core_weights: CoreWeights,
        precompute_constant: bool,
        shared_canvas: bool,
        canvas_upsample: str,
    ) -> None:
        super().__init__()
        self.shared_canvas = shared_canvas
        handed = hidden_channels if shared_canvas else canvas_channels
        last = len(steps) - 1
        self.layers = nn.ModuleList(
            ConditionalDRAW(
                num_steps=t,
                cond_channels=cond_channels + (handed if i > 0 else 0),
                image_channels=image_channels,
                latent_channels=latent_channels,
                hidden_channels=hidden_channels,
                canvas_channels=canvas_channels,
                kernel_size=kernel_size,
                core_weights=core_weights,
                precompute_constant=precompute_constant,
                observation=not shared_canvas or i == last,
            )
            for i, t in enumerate(steps)
        )

        def upconv(channels: int) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(channels, channels, 2, stride=2)

        if shared_canvas:
            self.hidden_up = nn.ModuleList(upconv(hidden_channels) for _ in range(last))
            self.canvas_up = (
                nn.ModuleList(upconv(canvas_channels) for _ in range(last))
                if canvas_upsample == "upconv"
                else None
            )
        else:
            self.canvas_in = nn.ModuleList(
                nn.Sequential(
                    upconv(canvas_channels),
                    nn.Conv2d(canvas_channels, canvas_channels, 4, stride=4),
                )
                for _ in range(last)
            )

    def upsample_canvas(self, i: int, canvas: torch.Tensor) -> torch.Tensor:
        """Type 1: u^i_T (b, canvas, s_i, s_i) -> u^{i+1}_0 (b, canvas, 2 s_i, 2 s_i)."""
        return up(canvas) if self.canvas_up is None else self.canvas_up[i](canvas)

    def forward(
        self,
        conds: list[torch.Tensor],
        queries: list[torch.Tensor] | None,
        generator: torch.Generator | None = None,
    ) -> list[LayerPass]:
        """All layers, coarsest first: ``conds[i]`` [v^q, r] (m, p + r, s_i/4, same);
        ``queries[i]`` layer i's input image (m, c, s_i, s_i) for the posterior pass, None for
        the prior pass."""
        passes: list[LayerPass] = []
        for i, layer in enumerate(self.layers):
            cond, initial = conds[i], None
            if passes:
                prev = passes[-1].draw
                if self.shared_canvas:
                    cond = torch.cat([cond, self.hidden_up[i - 1](prev.hidden)], dim=1)
                    initial = self.upsample_canvas(i - 1, prev.canvas)
                else:
                    cond = torch.cat([cond, self.canvas_in[i - 1](prev.canvas)], dim=1)
            if queries is None:
                draw = layer.prior_pass(cond, generator, canvas=initial)
            else:
                draw = layer.posterior_pass(cond, queries[i], generator, canvas=initial)
            passes.append(LayerPass(initial, draw))
        return passes

    def means(self, passes: list[LayerPass]) -> list[torch.Tensor]:
        """The mean each layer's NLL scores (m, c, s_i, s_i), coarsest first; the last is the
        model's image (m, c, s, s). Type 1: eta(u^i_T) with the last layer's head; type 2: layer
        i's own image eta_i(u^i_T), and for the last layer the sum of all layers' images."""
        if self.shared_canvas:
            head = self.layers[-1].observation
            return [head(p.draw.canvas) for p in passes]
        own = self.layer_images(passes)
        return [*own[:-1], collapse(own)]

    def layer_images(self, passes: list[LayerPass]) -> list[torch.Tensor]:
        """What each layer drew (m, c, s_i, s_i), coarsest first (thesis figs 5.10-5.15). Type 2:
        its own image eta_i(u^i_T). Type 1: the change it made to the canvas, read by eta
        without its bias, W_eta (u^i_T - u^i_0); with a bilinear hand-over (model 1, which
        commutes with the 1x1 eta) the image is exactly b_eta + :func:`collapse` of these."""
        if not self.shared_canvas:
            pairs = zip(self.layers, passes, strict=True)
            return [layer.observation(p.draw.canvas) for layer, p in pairs]
        weight = self.layers[-1].observation.conv.weight
        images = []
        for p in passes:
            change = p.draw.canvas if p.initial is None else p.draw.canvas - p.initial
            images.append(F.conv2d(change, weight))
        return images
