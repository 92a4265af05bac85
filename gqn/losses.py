"""The negative ELBO and its units (thesis eq 4.17; seed 001's appendix for the KL).

    F = -ln N(x^q | eta^g(u_L), sigma_t) + sum_l KL[q_l || pi_l]                      (eq 4.17)

Both terms are reported per scene in nats (per image when a scene has one target) and per
dimension in bits, separately: at sigma = 0.7 the NLL of a 64x64x3 image cannot go below
D * 1/2 * ln(2 pi sigma^2) ~= 6909 nats even for a perfect mean (D = 12288), so a "loss stuck
at 6.9k" is this normalising constant, not a bug (:func:`gaussian_nll_floor`).
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

    ``sigma``: a number, a 0-d tensor or a tensor of x's shape (one per dimension); any other
    shape, like a ``mean`` of another shape than ``x``, is refused rather than broadcast.
    Computed in at least fp32 whatever the inputs' precision (e.g. a bf16 mean under autocast).
    """
    if x.shape != mean.shape:
        raise ValueError(f"mean {tuple(mean.shape)} must have the shape of x {tuple(x.shape)}")
    x, mean = _at_least_fp32(x), _at_least_fp32(mean)
    sigma = torch.as_tensor(sigma, dtype=mean.dtype, device=mean.device)
    if sigma.dim() != 0 and sigma.shape != x.shape:
        raise ValueError(
            f"sigma must be a number or a tensor of x's shape {tuple(x.shape)}, "
            f"got shape {tuple(sigma.shape)}"
        )
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
    """Nats per image -> bits per dimension: the one conversion training logs and eval share."""
    return nats / (num_dims * math.log(2.0))


def in_units(name: str, nats: torch.Tensor, num_dims: int) -> dict[str, torch.Tensor]:
    """``{name}_nats`` (per image) and ``{name}_bits_per_dim`` of a quantity given in nats."""
    return {f"{name}_nats": nats, f"{name}_bits_per_dim": nats_to_bits_per_dim(nats, num_dims)}


def sum_targets(values: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Sum over the valid targets: values (b, n, ...) and target_mask (b, n) -> (b, ...).

    Selection, not multiplication, so a non-finite value in a masked slot cannot leak."""
    mask = target_mask.reshape(*target_mask.shape, *([1] * (values.dim() - 2)))
    return torch.where(mask, values, values.new_zeros(())).sum(1)


@dataclass
class ELBOTerms:
    """Per-scene terms of the negative ELBO, in nats, for a batch of b scenes with n targets.

    - ``nll_per_target``: (b, n) Gaussian NLL of each target image (any value where masked).
    - ``kl_groups``: name -> (b, steps) KL of each step of a group of latents, already summed
      over the scene's valid targets: GQN has one group ``"draw"`` (its L steps; the latents of
      each target are its own, so the KL grows with n); a multi-scale generator has one group
      per DRAW layer; a model with one latent per scene a group of that latent.
    - ``target_mask``: (b, n) bool, True for real targets.
    - ``num_dims``: dimensions of one image (c * h * w), for bits/dim.
    - ``mean``: (b, n, c, h, w) the mean of the image distribution the NLL was scored under (the
      posterior reconstruction, unclamped), so evaluation needs no second posterior pass.
    - ``squared_error_per_target``: (b, n) per-pixel mean squared error of that reconstruction,
      clamped to [0, 1], against the target image. Unlike the NLL it does not depend on sigma,
      so it shows learning progress while sigma is annealed.
    """

    nll_per_target: torch.Tensor
    kl_groups: dict[str, torch.Tensor]
    target_mask: torch.Tensor
    num_dims: int
    mean: torch.Tensor | None = None
    squared_error_per_target: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.nll_per_target.shape != self.target_mask.shape:
            raise ValueError(
                f"nll_per_target {tuple(self.nll_per_target.shape)} must match target_mask "
                f"{tuple(self.target_mask.shape)}"
            )
        if not self.kl_groups:
            raise ValueError("kl_groups must name at least one group of latents")

    @property
    def nll(self) -> torch.Tensor:
        """(b,) NLL summed over the scene's valid targets."""
        return sum_targets(self.nll_per_target, self.target_mask)

    @property
    def kl_per_step(self) -> torch.Tensor:
        """(b, steps) the KL of every step of every group, groups in order."""
        return torch.cat(list(self.kl_groups.values()), dim=1)

    @property
    def kl(self) -> torch.Tensor:
        """(b,) total KL over all groups and steps."""
        return self.kl_per_step.sum(1)

    @property
    def squared_error(self) -> torch.Tensor | None:
        """(b,) mean over the scene's valid targets of ``squared_error_per_target``."""
        if self.squared_error_per_target is None:
            return None
        count = self.target_mask.sum(1).clamp(min=1)
        return sum_targets(self.squared_error_per_target, self.target_mask) / count

    @property
    def loss(self) -> torch.Tensor:
        """Scalar batch mean of the negative ELBO in nats/scene: what training minimises."""
        return (self.nll + self.kl).mean()

    def summary(self) -> dict[str, torch.Tensor]:
        """Batch means as 0-d tensors (no host sync): nats and bits/dim of NLL, KL (in all and
        per group, ``kl_<group>_nats``) and the ELBO, KL per step (``kl_step_<i>``, steps of all
        groups in order) and (where the squared error is known) the reconstruction's batch MSE
        and its PSNR in dB."""
        nll, kl = self.nll.mean().detach(), self.kl.mean().detach()
        out = {
            "nll_nats": nll,
            "kl_nats": kl,
            "elbo_nats": -(nll + kl),
            "nll_bits_per_dim": nats_to_bits_per_dim(nll, self.num_dims),
            "kl_bits_per_dim": nats_to_bits_per_dim(kl, self.num_dims),
            "loss_bits_per_dim": nats_to_bits_per_dim(nll + kl, self.num_dims),
        }
        for name, group in self.kl_groups.items():
            out.update(in_units(f"kl_{name}", group.sum(1).mean().detach(), self.num_dims))
        for step, value in enumerate(self.kl_per_step.mean(0).detach()):
            out[f"kl_step_{step}"] = value
        squared_error = self.squared_error
        if squared_error is not None:
            mse = squared_error.mean().detach()
            out["recon_mse"] = mse
            out["recon_psnr_db"] = psnr_from_mse(mse)
        return out
