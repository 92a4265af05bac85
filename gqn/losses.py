"""The negative ELBO and its units (thesis eq 4.17; seed 001's appendix for the KL).

    F = -ln N(x^q | eta^g(u_L), sigma_t) + sum_l KL[q_l || pi_l]                      (eq 4.17)

Both terms are reported per image in nats and per dimension in bits, separately: at sigma = 0.7 the
NLL of a 64x64x3 image cannot go below D * 1/2 * ln(2 pi sigma^2) ~= 6909 nats even for a perfect
mean (D = 12288), so a "loss stuck at 6.9k" is this normalising constant, not a bug
(:func:`gaussian_nll_floor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2.0 * math.pi)
MSE_FLOOR = 1e-10  # identical images give PSNR_CAP dB, not an infinity that breaks averages
PSNR_CAP = 10.0 * math.log10(1.0 / MSE_FLOOR)


def _at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` promoted to fp32 if it is in a lower precision (bf16/fp16 under autocast), so
    that sums over thousands of dimensions never run in 8 mantissa bits; fp64 stays fp64."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """-ln N(x | mean, sigma^2 I), summed over all but the first dimension: ``(b, ...) -> (b,)``.

    Computed in at least fp32 whatever the inputs' precision (e.g. a bf16 mean under autocast).
    """
    x, mean = _at_least_fp32(x), _at_least_fp32(mean)
    sigma = torch.as_tensor(sigma, dtype=mean.dtype, device=mean.device)
    per_dim = 0.5 * ((x - mean) / sigma) ** 2 + sigma.log() + 0.5 * LOG_2PI
    return per_dim.flatten(1).sum(1)


def squared_error(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Per-image mean over dimensions of ``(x - clamp(mean, 0, 1))^2``: ``(b, ...) -> (b,)``, in
    at least fp32 and outside autograd (a metric, never a loss)."""
    x, mean = _at_least_fp32(x.detach()), _at_least_fp32(mean.detach())
    return (x - mean.clamp(0, 1)).pow(2).flatten(1).mean(1)


def psnr_from_mse(err: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for data range 1 from MSE, elementwise; capped at ``PSNR_CAP``."""
    return 10.0 * torch.log10(1.0 / err.clamp_min(MSE_FLOOR))


def gaussian_nll_floor(num_dims: int, sigma: float) -> float:
    """The NLL of a perfect mean: ``num_dims * 1/2 * ln(2 pi sigma^2)`` nats."""
    return num_dims * 0.5 * math.log(2.0 * math.pi * sigma * sigma)


def kl_normal(
    q_mean: torch.Tensor, q_std: torch.Tensor, p_mean: torch.Tensor, p_std: torch.Tensor
) -> torch.Tensor:
    """Closed-form KL[N(q_mean, q_std^2) || N(p_mean, p_std^2)] for diagonal Gaussians.

    ``KL = ln(p_std / q_std) + (q_std^2 + (q_mean - p_mean)^2) / (2 p_std^2) - 1/2`` per
    dimension, summed over all but the first dimension: ``(b, ...) -> (b,)``. Computed in at
    least fp32 whatever the inputs' precision.
    """
    q_mean, q_std = _at_least_fp32(q_mean), _at_least_fp32(q_std)
    p_mean, p_std = _at_least_fp32(p_mean), _at_least_fp32(p_std)
    var_ratio = (q_std / p_std) ** 2
    mean_term = ((q_mean - p_mean) / p_std) ** 2
    per_dim = 0.5 * (var_ratio + mean_term - 1.0 - var_ratio.log())
    return per_dim.flatten(1).sum(1)


def nats_to_bits_per_dim(nats: torch.Tensor | float, num_dims: int) -> torch.Tensor | float:
    """Nats per image -> bits per dimension."""
    return nats / (num_dims * math.log(2.0))


@dataclass
class ELBOTerms:
    """Per-image terms of the negative ELBO, in nats.

    - ``nll``: (b,) Gaussian NLL of the query image.
    - ``kl_per_step``: (b, L) KL[q_l || pi_l] of each DRAW step.
    - ``num_dims``: dimensions of one image (c * h * w), for bits/dim.
    - ``mean``: (b, c, h, w) the mean of the image distribution the NLL was scored under (the
      posterior reconstruction, unclamped), so evaluation needs no second posterior pass.
    - ``squared_error``: (b,) per-pixel mean squared error of that reconstruction, clamped to
      [0, 1], against the query image. Unlike the NLL it does not depend on sigma, so it shows
      learning progress while sigma is annealed.
    """

    nll: torch.Tensor
    kl_per_step: torch.Tensor
    num_dims: int
    mean: torch.Tensor | None = None
    squared_error: torch.Tensor | None = None

    @property
    def kl(self) -> torch.Tensor:
        """(b,) total KL over the L steps."""
        return self.kl_per_step.sum(1)

    @property
    def loss(self) -> torch.Tensor:
        """Scalar batch mean of the negative ELBO in nats/image: what training minimises."""
        return (self.nll + self.kl).mean()

    def summary(self) -> dict[str, torch.Tensor]:
        """Batch means as 0-d tensors (no host sync): nats/image and bits/dim, KL per step, and
        (where ``squared_error`` is known) the reconstruction's batch MSE and its PSNR in dB."""
        nll, kl = self.nll.mean().detach(), self.kl.mean().detach()
        out = {
            "nll_nats": nll,
            "kl_nats": kl,
            "elbo_nats": -(nll + kl),
            "nll_bits_per_dim": nats_to_bits_per_dim(nll, self.num_dims),
            "kl_bits_per_dim": nats_to_bits_per_dim(kl, self.num_dims),
            "loss_bits_per_dim": nats_to_bits_per_dim(nll + kl, self.num_dims),
        }
        for step, value in enumerate(self.kl_per_step.mean(0).detach()):
            out[f"kl_step_{step}"] = value
        if self.squared_error is not None:
            mse = self.squared_error.mean().detach()
            out["recon_mse"] = mse
            out["recon_psnr_db"] = psnr_from_mse(mse)
        return out
