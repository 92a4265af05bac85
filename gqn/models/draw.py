"""The conditional convolutional DRAW loop: L steps of generator and (in training) inference.

:class:`ConditionalDRAW` runs the step equations of :mod:`gqn.models.generator` (4.6-4.10) and
:mod:`gqn.models.inference` (4.12-4.16) at one resolution, given the conditioning
``cond = [v^q, r]`` at the hidden resolution. It is the "DRAW layer" of the thesis (fig. 4.10):
the plain GQN uses one; multi-scale generators chain several.

Weights per step: with ``core_weights="shared"`` one :class:`GeneratorStep` and one
:class:`InferenceStep` are reused at all L steps (parameter count independent of L); with
``"per_step"`` there are L of each (pi_{theta_l} with its own theta_l). The LSTM states and the
canvas flow through all L steps in both cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gqn.losses import kl_normal
from gqn.models.generator import GeneratorStep, ObservationHead
from gqn.models.inference import InferenceStep

CoreWeights = Literal["shared", "per_step"]


@dataclass
class DrawOutput:
    """What one pass of the DRAW loop produced.

    - ``canvas``: u_L (b, canvas_channels, s, s)
    - ``kl_per_step``: (b, L) KL[q_l || pi_l] in nats (posterior pass only, else None)
    - ``priors``, ``posteriors``: per step (mean, std), each (b, latent, H, W)
    - ``latents``: per step z_l (b, latent, H, W)
    """

    canvas: torch.Tensor
    kl_per_step: torch.Tensor | None = None
    priors: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    posteriors: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    latents: list[torch.Tensor] = field(default_factory=list)


def standard_normal(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, from ``generator`` when one is given."""
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


class ConditionalDRAW(nn.Module):
    """L steps of conv-DRAW. ``scale`` is image size / hidden size (4 for the GQN)."""

    def __init__(
        self,
        num_steps: int,
        cond_channels: int,
        image_channels: int,
        latent_channels: int,
        hidden_channels: int,
        canvas_channels: int,
        scale: int = 4,
        kernel_size: int = 5,
        core_weights: CoreWeights = "shared",
        precompute_constant: bool = True,
    ) -> None:
        super().__init__()
        if core_weights not in ("shared", "per_step"):
            raise ValueError(f"core_weights must be 'shared' or 'per_step', got {core_weights!r}")
        self.num_steps = num_steps
        self.scale = scale
        self.canvas_channels = canvas_channels
        self.hidden_channels = hidden_channels
        copies = 1 if core_weights == "shared" else num_steps
        step_args = (latent_channels, hidden_channels, canvas_channels, scale, kernel_size)
        self.generator_steps = nn.ModuleList(
            GeneratorStep(cond_channels, *step_args, precompute_constant) for _ in range(copies)
        )
        query_channels = image_channels * scale * scale
        self.inference_steps = nn.ModuleList(
            InferenceStep(cond_channels + query_channels, *step_args, precompute_constant)
            for _ in range(copies)
        )
        self.observation = ObservationHead(canvas_channels, image_channels)

    def _initial(
        self, cond: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        b, _, height, width = cond.shape
        zeros = cond.new_zeros(b, self.hidden_channels, height, width)
        canvas = cond.new_zeros(b, self.canvas_channels, height * self.scale, width * self.scale)
        return (zeros, zeros), canvas

    def posterior_pass(
        self,
        cond: torch.Tensor,
        query_image: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> DrawOutput:
        """Training pass, z_l ~ q_l (eqs 4.11-4.16). cond (b, C, H, W); query_image (b, c, s, s)."""
        query_cond = torch.cat([F.pixel_unshuffle(query_image, self.scale), cond], dim=1)
        gen_prepared = [step.core.prepare(cond) for step in self.generator_steps]
        inf_prepared = [step.core.prepare(query_cond) for step in self.inference_steps]
        state_g, canvas = self._initial(cond)
        state_e = state_g
        out = DrawOutput(canvas)
        kls = []
        for l in range(self.num_steps):
            i = l % len(self.generator_steps)
            gen, inf = self.generator_steps[i], self.inference_steps[i]
            h_g = state_g[1]
            prior = gen.prior(h_g)  # eq 4.6: from h^g_l, before the core's update
            state_e = inf.core(inf_prepared[i], [inf.downsample_canvas(canvas), h_g], state_e)
            posterior = inf.posterior(state_e[1])  # eq 4.13: after the inference core's update
            z = posterior[0] + posterior[1] * standard_normal(posterior[0], generator)  # 4.14
            state_g = gen.core(gen_prepared[i], [z], state_g)  # eq 4.15
            canvas = canvas + gen.upconv(state_g[1])  # eq 4.16
            kls.append(kl_normal(posterior[0], posterior[1], prior[0], prior[1]))
            out.priors.append(prior)
            out.posteriors.append(posterior)
            out.latents.append(z)
        out.canvas = canvas
        out.kl_per_step = torch.stack(kls, dim=1)
        return out

    def prior_pass(
        self, cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> DrawOutput:
        """Sampling pass, z_l ~ pi_l (eqs 4.5-4.9); the inference network is never called."""
        gen_prepared = [step.core.prepare(cond) for step in self.generator_steps]
        state_g, canvas = self._initial(cond)
        out = DrawOutput(canvas)
        for l in range(self.num_steps):
            i = l % len(self.generator_steps)
            gen = self.generator_steps[i]
            prior = gen.prior(state_g[1])  # eq 4.6
            z = prior[0] + prior[1] * standard_normal(prior[0], generator)  # eq 4.7
            state_g = gen.core(gen_prepared[i], [z], state_g)  # eq 4.8
            canvas = canvas + gen.upconv(state_g[1])  # eq 4.9
            out.priors.append(prior)
            out.latents.append(z)
        out.canvas = canvas
        return out
