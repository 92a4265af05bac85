"""The conditional convolutional DRAW loop: L steps of generator and (in training) inference.

:class:`ConditionalDRAW` runs the step equations of :mod:`gqn.models.generator` (4.6-4.10) and
:mod:`gqn.models.inference` (4.12-4.16) at one resolution, given the conditioning
``cond = [v^q, r]`` at the hidden resolution. It is the "DRAW layer" of the thesis (fig. 4.10):
the plain GQN uses one; multi-scale generators chain several.

Weights per step: with ``core_weights="shared"`` one :class:`GeneratorStep` and one
:class:`InferenceStep` are reused at all L steps (parameter count independent of L); with
``"per_step"`` there are L of each (pi_{theta_l} with its own theta_l). The LSTM states and the
canvas flow through all L steps in both cases.

Canvas at the hidden resolution (fast path, shared core): the canvas update (UpConv, a 4x4
stride-4 transposed convolution) and the inference network's canvas downsampling (a 4x4 stride-4
convolution) are linear and their 4x4 blocks do not overlap, so

    u_l = UpConv_W(sum_{j<=l} h^g_j) + l * b_up                      (no per-step full-res canvas)
    down(u_l) = down(u_{l-1}) + M h^g_l + W_down b_up,  M = W_down . W_up  (a 1x1 convolution)

With one shared core (and ``fuse_canvas``) the loops track ``sum h^g`` and ``down(u_l)`` at the
hidden resolution and run UpConv once, after the last step: the same function, ~1/16 of the
canvas FLOPs, and no (b, canvas, s, s) tensor kept per step for the backward pass.

A layer of a multi-scale generator (:mod:`gqn.models.multiscale`) may start from a given canvas
u_0 (the previous layer's, upsampled; zero otherwise) and hands on its last hidden state h^g_L;
its extra inputs from the previous layer are part of ``cond``. Without an observation head
(``observation=False``) the layer only updates the canvas.
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
HIDDEN_SCALE = 4  # the DRAW hidden state lives at 1/4 of the image resolution


@dataclass
class DrawOutput:
    """What one pass of the DRAW loop produced.

    - ``canvas``: u_L (b, canvas_channels, s, s)
    - ``kl_per_step``: (b, L) KL[q_l || pi_l] in nats (posterior pass only, else None)
    - ``priors``, ``posteriors``: per step (mean, std), each (b, latent, H, W)
    - ``latents``: per step z_l (b, latent, H, W)
    - ``hidden``: h^g_L (b, hidden, H, W), the generator's last hidden state
    """

    canvas: torch.Tensor
    kl_per_step: torch.Tensor | None = None
    priors: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    posteriors: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    latents: list[torch.Tensor] = field(default_factory=list)
    hidden: torch.Tensor | None = None


def standard_normal(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, from ``generator`` when one is given."""
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


class ConditionalDRAW(nn.Module):
    """L steps of conv-DRAW, the hidden state at 1/``HIDDEN_SCALE`` of the image resolution."""

    def __init__(
        self,
        num_steps: int,
        cond_channels: int,
        image_channels: int,
        latent_channels: int,
        hidden_channels: int,
        canvas_channels: int,
        *,
        kernel_size: int,
        core_weights: CoreWeights,
        precompute_constant: bool,
        observation: bool = True,
    ) -> None:
        super().__init__()
        self.fuse_canvas = precompute_constant  # the attribute turns it off (benchmarks, tests)
        if core_weights not in ("shared", "per_step"):
            raise ValueError(f"core_weights must be 'shared' or 'per_step', got {core_weights!r}")
        self.num_steps = num_steps
        self.canvas_channels = canvas_channels
        copies = 1 if core_weights == "shared" else num_steps
        step_args = (latent_channels, hidden_channels, canvas_channels, HIDDEN_SCALE, kernel_size)
        self.generator_steps = nn.ModuleList(
            GeneratorStep(cond_channels, *step_args, precompute_constant) for _ in range(copies)
        )
        query_channels = image_channels * HIDDEN_SCALE**2
        self.inference_steps = nn.ModuleList(
            InferenceStep(cond_channels + query_channels, *step_args, precompute_constant)
            for _ in range(copies)
        )
        self.observation = ObservationHead(canvas_channels, image_channels) if observation else None

    def _initial_canvas(self, cond: torch.Tensor, canvas: torch.Tensor | None) -> torch.Tensor:
        """u_0: ``canvas`` (b, canvas, s, s), or the zero canvas if None; on the fused path (no
        full-resolution canvas until the end) down(u_0) at the hidden resolution (b_down for the
        zero canvas)."""
        b, _, height, width = cond.shape
        if self._fused():
            down = self.inference_steps[0].downsample_canvas
            if canvas is not None:
                return down(canvas)
            return cond.new_zeros(b, self.canvas_channels, height, width) + down.bias[:, None, None]
        if canvas is not None:
            return canvas
        return cond.new_zeros(b, self.canvas_channels, height * HIDDEN_SCALE, width * HIDDEN_SCALE)

    def _fused(self) -> bool:
        return self.fuse_canvas and len(self.generator_steps) == 1

    def _final_canvas(self, h_sum: torch.Tensor, canvas: torch.Tensor | None) -> torch.Tensor:
        """u_L = u_0 + UpConv(sum_l h^g_l) + L * b_up: one UpConv for all L steps (shared core);
        u_0 = ``canvas``, or zero if None."""
        upconv = self.generator_steps[0].upconv
        out = F.conv_transpose2d(h_sum, upconv.weight, upconv.bias * self.num_steps, upconv.stride)
        return out if canvas is None else canvas + out

    def _down_up(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, W_down b_up) with M as a 1x1 convolution weight:
        down(u + UpConv(h)) = down(u) + M h + W_down b_up (the 4x4 blocks do not overlap)."""
        upconv = self.generator_steps[0].upconv
        down = self.inference_steps[0].downsample_canvas
        # upconv.weight (hidden, canvas, 4, 4); down.weight (canvas_out, canvas, 4, 4)
        matrix = torch.einsum("ocab,kcab->ok", down.weight, upconv.weight)[:, :, None, None]
        return matrix, torch.einsum("ocab,c->o", down.weight, upconv.bias)

    def posterior_pass(
        self,
        cond: torch.Tensor,
        query_image: torch.Tensor,
        generator: torch.Generator | None = None,
        canvas: torch.Tensor | None = None,
    ) -> DrawOutput:
        """Training pass, z_l ~ q_l (eqs 4.11-4.16). cond (b, C, H, W); query_image (b, c, s, s);
        ``canvas`` u_0 (b, canvas, s, s) or None (zero)."""
        initial = canvas
        query_cond = torch.cat([F.pixel_unshuffle(query_image, HIDDEN_SCALE), cond], dim=1)
        gen_prepared = [step.core.prepare(cond) for step in self.generator_steps]
        inf_prepared = [step.core.prepare(query_cond) for step in self.inference_steps]
        state_g = state_e = self.generator_steps[0].core.zero_state(cond)
        canvas = self._initial_canvas(cond, initial)
        fused = self._fused()
        if fused:  # track sum h^g and down(u_l) at the hidden resolution (module docstring)
            down_up, down_up_bias = self._down_up()
            h_sum, down_canvas = state_g[1], canvas
        priors, posteriors, latents, kls = [], [], [], []
        for l in range(self.num_steps):
            i = l % len(self.generator_steps)
            gen, inf = self.generator_steps[i], self.inference_steps[i]
            h_g = state_g[1]
            prior = gen.prior(h_g)  # eq 4.6: from h^g_l, before the core's update
            if not fused:
                down_canvas = inf.downsample_canvas(canvas)
            state_e = inf.core(inf_prepared[i], [down_canvas, h_g], state_e)
            posterior = inf.posterior(state_e[1])  # eq 4.13: after the inference core's update
            z = posterior[0] + posterior[1] * standard_normal(posterior[0], generator)  # 4.14
            state_g = gen.core(gen_prepared[i], [z], state_g)  # eq 4.15
            if fused:  # eq 4.16 at the hidden resolution
                h_sum = h_sum + state_g[1]
                down_canvas = down_canvas + F.conv2d(state_g[1], down_up, down_up_bias)
            else:
                canvas = canvas + gen.upconv(state_g[1])  # eq 4.16
            kls.append(kl_normal(posterior[0], posterior[1], prior[0], prior[1]))
            priors.append(prior)
            posteriors.append(posterior)
            latents.append(z)
        return DrawOutput(
            canvas=self._final_canvas(h_sum, initial) if fused else canvas,
            kl_per_step=torch.stack(kls, dim=1),
            priors=priors,
            posteriors=posteriors,
            latents=latents,
            hidden=state_g[1],
        )

    def prior_pass(
        self,
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
        canvas: torch.Tensor | None = None,
    ) -> DrawOutput:
        """Sampling pass, z_l ~ pi_l (eqs 4.5-4.9); the inference network is never called.
        ``canvas``: u_0 (b, canvas, s, s) or None (zero)."""
        initial = canvas
        gen_prepared = [step.core.prepare(cond) for step in self.generator_steps]
        fused = self._fused()
        state_g = self.generator_steps[0].core.zero_state(cond)
        canvas = None if fused else self._initial_canvas(cond, initial)
        h_sum = state_g[1]
        priors, latents = [], []
        for l in range(self.num_steps):
            i = l % len(self.generator_steps)
            gen = self.generator_steps[i]
            prior = gen.prior(state_g[1])  # eq 4.6
            z = prior[0] + prior[1] * standard_normal(prior[0], generator)  # eq 4.7
            state_g = gen.core(gen_prepared[i], [z], state_g)  # eq 4.8
            if fused:  # eq 4.9 summed at the hidden resolution, one UpConv after the loop
                h_sum = h_sum + state_g[1]
            else:
                canvas = canvas + gen.upconv(state_g[1])  # eq 4.9
            priors.append(prior)
            latents.append(z)
        return DrawOutput(
            canvas=self._final_canvas(h_sum, initial) if fused else canvas,
            priors=priors,
            latents=latents,
            hidden=state_g[1],
        )
