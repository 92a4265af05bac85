"""The Consistent GQN's scene latent: a conv-DRAW prior p(z | r) and posterior q(z | r, e_T)
(Kumar et al. 2018, §3.2-3.3 and appendix B).

z is ONE latent per scene, drawn in nt DRAW steps; at step l (states start at zero):

    p_l(z_l | r, z_<l)      = N(eta^p(h^p_l))                                prior head
    (c^q, h^q)_{l+1}        = ConvLSTM^q(c^q_l, h^q_l, [enc^q([r, e_T]), h^p_l])  posterior core
    q_l(z_l | r, e_T, z_<l) = N(eta^q(h^q_{l+1}))                            posterior head
    z_l ~ q_l (training) or p_l (sampling)
    (c^p, h^p)_{l+1}        = ConvLSTM^p(c^p_l, h^p_l, [enc^p(r), z_l])        prior core

as the GQN's generator/inference pair (prior from h^p before the core's update, posterior
after the posterior core's). e_T is the aggregated encoding of the n target (frame, viewpoint)
pairs. enc^p and enc^q are the appendix's nf_enc convolutions (ReLU) from the conditioning to
the LSTM input; the LSTMs have nf_to_hidden channels, each z_l nf_z. The latent the renderer
gets is z = [z_1, ..., z_nt] (b, nt * nf_z, H, W); the KL is
KL[q || p] = sum_l E_q[KL[q_l || p_l]], each step in closed form (:func:`gqn.losses.kl_normal`)
at the sampled z_<l. There is no canvas here: nf_to_obs and nf_dec are the renderer's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gqn.losses import kl_normal
from gqn.models.convlstm import ConvLSTMCell
from gqn.models.draw import standard_normal
from gqn.models.heads import GaussianHead


class SceneLatentDRAW(nn.Module):
    """Prior and posterior DRAW over z; one core of each reused at all nt steps.

    Shapes: r and e_T (b, r_channels, H, W) -> z (b, nt * nf_z, H, W), KL (b, nt).
    """

    def __init__(
        self,
        num_steps: int,
        r_channels: int,
        nf_enc: int,
        nf_to_hidden: int,
        nf_z: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.num_steps = num_steps
        pad = kernel_size // 2
        self.prior_enc = nn.Conv2d(r_channels, nf_enc, kernel_size, padding=pad)
        self.posterior_enc = nn.Conv2d(2 * r_channels, nf_enc, kernel_size, padding=pad)
        self.prior_core = ConvLSTMCell(nf_enc, nf_z, nf_to_hidden, kernel_size)
        self.posterior_core = ConvLSTMCell(nf_enc, nf_to_hidden, nf_to_hidden, kernel_size)
        self.prior_head = GaussianHead(nf_to_hidden, nf_z, kernel_size)
        self.posterior_head = GaussianHead(nf_to_hidden, nf_z, kernel_size)

    def posterior_pass(
        self, r: torch.Tensor, e_t: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ q(z | r, e_T) (reparameterised) and the KL of each step (b, nt) in nats."""
        prior_in = self.prior_core.prepare(F.relu(self.prior_enc(r)))
        posterior_in = self.posterior_core.prepare(
            F.relu(self.posterior_enc(torch.cat([r, e_t], dim=1)))
        )
        state_p = self.prior_core.zero_state(r)
        state_q = self.posterior_core.zero_state(r)
        latents, kls = [], []
        for _ in range(self.num_steps):
            prior = self.prior_head(state_p[1])
            state_q = self.posterior_core(posterior_in, [state_p[1]], state_q)
            posterior = self.posterior_head(state_q[1])
            z = posterior[0] + posterior[1] * standard_normal(posterior[0], generator)
            state_p = self.prior_core(prior_in, [z], state_p)
            latents.append(z)
            kls.append(kl_normal(*posterior, *prior))
        return torch.cat(latents, dim=1), torch.stack(kls, dim=1)

    def prior_pass(self, r: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z | r): (b, nt * nf_z, H, W); noise from ``generator`` step by step."""
        prior_in = self.prior_core.prepare(F.relu(self.prior_enc(r)))
        state_p = self.prior_core.zero_state(r)
        latents = []
        for _ in range(self.num_steps):
            mean, std = self.prior_head(state_p[1])
            z = mean + std * standard_normal(mean, generator)
            state_p = self.prior_core(prior_in, [z], state_p)
            latents.append(z)
        return torch.cat(latents, dim=1)
