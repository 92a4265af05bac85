"""The generator g of the conditional convolutional DRAW (thesis eqs 4.5-4.10).

One step l (weights theta_l; shared across steps or not, see ``GQNConfig.core_weights``):

    pi_l(z_l | v^q, r, z_<l) = N(z_l | eta^pi(h^g_l))                       (4.6)  prior head
    z_l ~ pi_l                                                              (4.7)  (sampling)
    (c^g_{l+1}, h^g_{l+1}) = ConvLSTM^g(c^g_l, h^g_l, [v^q, r, z_l])        (4.8)  core
    u_{l+1} = u_l + UpConv(h^g_{l+1})                                       (4.9)  canvas
    x ~ N(x^q | mu = eta^g(u_L), sigma_t)                                   (4.10) observation

The prior comes from h^g_l *before* the core's update at step l. The hidden state lives at 1/4 of
the image resolution; UpConv is a 4x4 stride-4 transposed convolution to the full-resolution
canvas; eta^g is a 1x1 convolution, as in the paper. The mean is not squashed: a sigmoid output
would need logits below -5.7 to draw the exact black backgrounds of Shepard-Metzler scenes (which
SSIM punishes any grey on) and spends thousands of Adam steps getting there; images shown or
scored are the mean clamped to [0, 1] (:meth:`gqn.models.gqn.GQN.generate`).
"""

from __future__ import annotations

import torch
from torch import nn

from gqn.models.convlstm import ConvLSTMCell
from gqn.models.heads import GaussianHead


class GeneratorStep(nn.Module):
    """The weights of one generator step: prior head, core and canvas UpConv.

    ``cond_channels`` counts the constant inputs [v^q, r]; the per-step input is z_l.
    """

    def __init__(
        self,
        cond_channels: int,
        latent_channels: int,
        hidden_channels: int,
        canvas_channels: int,
        scale: int,
        kernel_size: int,
        precompute_constant: bool,
    ) -> None:
        super().__init__()
        self.prior = GaussianHead(hidden_channels, latent_channels, kernel_size)
        self.core = ConvLSTMCell(
            cond_channels, latent_channels, hidden_channels, kernel_size, precompute_constant
        )
        self.upconv = nn.ConvTranspose2d(hidden_channels, canvas_channels, scale, stride=scale)


class ObservationHead(nn.Module):
    """eta^g (eq 4.10): canvas u_L (b, canvas, s, s) -> image distribution mean (b, c, s, s)."""

    def __init__(self, canvas_channels: int, image_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(canvas_channels, image_channels, 1)

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        return self.conv(canvas)
