"""The inference network q of the conditional convolutional DRAW (thesis eqs 4.11-4.16).

Training only. One step l:

    (c^e_{l+1}, h^e_{l+1}) = ConvLSTM^e(c^e_l, h^e_l, [u_l, h^g_l, x^q, v^q, r])   (4.12) core
    q_l(z_l | x^q, v^q, r, z_<l) = N(z_l | eta^q(h^e_{l+1}))                       (4.13) head
    z_l ~ q_l  (reparameterised)                                                   (4.14)

followed by the generator's core and canvas update (4.15-4.16, :mod:`gqn.models.generator`).
The posterior comes from h^e *after* the inference core's update at step l, and the inference
core sees the canvas u_l and the generator's state h^g_l. Inputs at full resolution are brought to
the hidden resolution: the canvas by a learned 4x4 stride-4 convolution, the query image by a
lossless space-to-depth (``pixel_unshuffle``: 3 channels -> 48 at factor 4), computed once per
query because x^q does not change across steps.
"""

from __future__ import annotations

from torch import nn

from gqn.models.convlstm import ConvLSTMCell
from gqn.models.heads import GaussianHead


class InferenceStep(nn.Module):
    """The weights of one inference step: canvas downsampling, core and posterior head.

    ``cond_channels`` counts the constant inputs [x^q (space-to-depth), v^q, r]; the per-step
    inputs are [downsampled u_l, h^g_l].
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
        self.downsample_canvas = nn.Conv2d(canvas_channels, canvas_channels, scale, stride=scale)
        self.core = ConvLSTMCell(
            cond_channels,
            canvas_channels + hidden_channels,
            hidden_channels,
            kernel_size,
            precompute_constant,
        )
        self.posterior = GaussianHead(hidden_channels, latent_channels, kernel_size)
