"""The Consistent GQN's deterministic rendering network (Kumar et al. 2018, §3.2, app. B).

"The DRAW network without a conditional posterior": a conv-DRAW generator core fed (r, z, v_t)
at every one of its nt steps, with no latent of its own. Step l (state and canvas start at zero):

    (c_{l+1}, h_{l+1}) = ConvLSTM(c_l, h_l, [enc([r, z, v_t]), dec(u_l)])
    u_{l+1}            = u_l + UpConv(h_{l+1})
    mean of x_t        = eta(u_nt)

enc: the nf_enc convolution (ReLU) of the conditioning, the same at every step; dec: the nf_dec
4x4 stride-4 convolution (ReLU) of the canvas to the LSTM input; UpConv: the 4x4 stride-4
transposed convolution from the LSTM state (nf_to_hidden) to the nf_to_obs-channel canvas at
full resolution; eta: the GQN's 1x1 observation head (:class:`gqn.models.generator.
ObservationHead`). The mean is not squashed (as the GQN's); it is clamped for display.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gqn.models.convlstm import ConvLSTMCell
from gqn.models.generator import ObservationHead
from gqn.models.rays import broadcast_viewpoint

SCALE = 4  # the hidden states live at 1/4 of the image resolution


class RenderingNetwork(nn.Module):
    """``forward(r, z, v) -> mean``: r (m, r_ch, H, W), z (m, z_ch, H, W), v (m, d) for m
    views (H = s/4) -> (m, c, s, s)."""

    def __init__(
        self,
        num_steps: int,
        cond_channels: int,
        image_channels: int,
        nf_enc: int,
        nf_to_hidden: int,
        nf_to_obs: int,
        nf_dec: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.nf_to_obs = nf_to_obs
        self.enc = nn.Conv2d(cond_channels, nf_enc, kernel_size, padding=kernel_size // 2)
        self.dec = nn.Conv2d(nf_to_obs, nf_dec, SCALE, stride=SCALE)
        self.core = ConvLSTMCell(nf_enc, nf_dec, nf_to_hidden, kernel_size)
        self.upconv = nn.ConvTranspose2d(nf_to_hidden, nf_to_obs, SCALE, stride=SCALE)
        self.observation = ObservationHead(nf_to_obs, image_channels)

    def forward(self, r: torch.Tensor, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        height, width = r.shape[-2:]
        cond = torch.cat([r, z, broadcast_viewpoint(v, height, width)], dim=1)
        prepared = self.core.prepare(F.relu(self.enc(cond)))
        state = self.core.zero_state(r)
        canvas = r.new_zeros(r.shape[0], self.nf_to_obs, height * SCALE, width * SCALE)
        for _ in range(self.num_steps):
            state = self.core(prepared, [F.relu(self.dec(canvas))], state)
            canvas = canvas + self.upconv(state[1])
        return self.observation(canvas)
