"""Per-image quality metrics: MSE, PSNR, SSIM and MS-SSIM of images in [0, 1].

All functions take ``pred`` and ``target`` float tensors ``(b, c, s, s)`` in [0, 1] and return
``(b,)`` per-image values, so callers can pick per image (best-of-N) before averaging.

Settings (thesis appendix A):

- SSIM: Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, averaged over the
  *valid* window positions (no padding) and the colour channels, computed with
  ``pytorch_msssim`` — the convention of Wang et al.'s reference implementation. torchmetrics 1.9
  instead averages over a reflect-padded map (a different number at small sizes: ~0.03 lower at
  32x32 on smooth images); both are tested against a reference in ``tests/test_metrics.py``.
- MS-SSIM: torchmetrics 1.9, Gaussian 11 / 1.5, 3 scales with ``betas = MS_SSIM_BETAS`` (the
  first three of Wang et al.'s five, renormalised by torchmetrics' ``normalize="relu"``). It needs
  images larger than 40 px; smaller sizes report ``None`` ("n/a").
- PSNR: ``10 log10(1 / MSE)`` with MSE floored at ``MSE_FLOOR`` so identical images give a finite
  ``PSNR_CAP`` (100 dB) instead of infinity, which would break averages.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim as _ssim
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from gqn.losses import MSE_FLOOR, PSNR_CAP, psnr_from_mse

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001)
MS_SSIM_MIN_SIZE = (SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_BETAS) - 1) + 1  # 41
METRICS = ("mse", "psnr", "ssim", "ms_ssim")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must both be (b, c, h, w); got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(b,) mean squared error per image."""
    _check(pred, target)
    return (pred.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(b,) PSNR in dB (data range 1)."""
    return psnr_from_mse(mse(pred, target))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(b,) SSIM (Gaussian 11 / 1.5, valid window, data range 1); needs s >= 11."""
    _check(pred, target)
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM with an {SSIM_WINDOW}x{SSIM_WINDOW} window needs images of at least "
            f"{SSIM_WINDOW} px, got {tuple(pred.shape[-2:])}: use a larger image size"
        )
    return _ssim(
        pred.float().clamp(0, 1),
        target.float().clamp(0, 1),
        data_range=1.0,
        size_average=False,
        win_size=SSIM_WINDOW,
        win_sigma=SSIM_SIGMA,
    )


def ms_ssim_available(image_size: int) -> bool:
    """Whether 3-scale MS-SSIM is defined at this image size (> 40 px)."""
    return image_size >= MS_SSIM_MIN_SIZE


def ms_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """(b,) 3-scale MS-SSIM, or ``None`` where the image is too small for 3 scales."""
    _check(pred, target)
    if not ms_ssim_available(min(pred.shape[-2:])):
        return None
    return multiscale_structural_similarity_index_measure(
        pred.float().clamp(0, 1),
        target.float().clamp(0, 1),
        gaussian_kernel=True,
        kernel_size=SSIM_WINDOW,
        sigma=SSIM_SIGMA,
        data_range=1.0,
        betas=MS_SSIM_BETAS,
        reduction="none",
    )


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor | None]:
    """Every metric of :data:`METRICS`, per image ``(b,)``; ``ms_ssim`` may be ``None``."""
    err = mse(pred, target)
    return {
        "mse": err,
        "psnr": psnr_from_mse(err),
        "ssim": ssim(pred, target),
        "ms_ssim": ms_ssim(pred, target),
    }


def settings() -> dict[str, object]:
    """The metric settings, as written into ``eval.json``."""
    return {
        "ssim": {
            "library": "pytorch_msssim",
            "window": "gaussian",
            "kernel_size": SSIM_WINDOW,
            "sigma": SSIM_SIGMA,
            "k1": 0.01,
            "k2": 0.03,
            "data_range": 1.0,
            "average": "valid window positions, then channels",
        },
        "ms_ssim": {
            "library": "torchmetrics",
            "kernel_size": SSIM_WINDOW,
            "sigma": SSIM_SIGMA,
            "betas": list(MS_SSIM_BETAS),
            "min_image_size": MS_SSIM_MIN_SIZE,
        },
        "psnr": {"data_range": 1.0, "mse_floor": MSE_FLOOR, "cap_db": PSNR_CAP},
    }
