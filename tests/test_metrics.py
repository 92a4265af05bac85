import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from gqn.eval import image_metrics


def smooth_pair(size=32, b=4, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = F.interpolate(torch.rand(b, 3, 8, 8, generator=g), size=size, mode="bilinear")
    return a, (a + noise * torch.randn(a.shape, generator=g)).clamp(0, 1)


def reference_ssim(x, y, pad: bool):
    """Float64 SSIM from the definition (Gaussian 11 / 1.5): valid window or reflect-padded."""
    x, y = x.double(), y.double()
    t = torch.arange(11, dtype=torch.float64) - 5
    w = torch.exp(-(t**2) / (2 * 1.5**2))
    w = w / w.sum()
    k = (w[:, None] * w[None]).expand(3, 1, 11, 11)

    def filt(z):
        return F.conv2d(F.pad(z, (5,) * 4, mode="reflect") if pad else z, k, groups=3)

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return m.mean((1, 2, 3))


def test_identical_images():
    a, _ = smooth_pair()
    assert torch.allclose(image_metrics.ssim(a, a), torch.ones(4), atol=1e-5)
    assert torch.all(image_metrics.mse(a, a) == 0)
    p = image_metrics.psnr(a, a)
    assert torch.isfinite(p).all() and torch.allclose(p, torch.full((4,), image_metrics.PSNR_CAP))


def test_psnr_of_known_mse():
    a = torch.zeros(2, 3, 16, 16)
    b = torch.full_like(a, 0.1)  # MSE 0.01 -> 20 dB
    assert torch.allclose(image_metrics.mse(a, b), torch.full((2,), 0.01))
    assert torch.allclose(image_metrics.psnr(a, b), torch.full((2,), 10 * math.log10(1 / 0.01)))
    x, y = smooth_pair()
    tm = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert torch.allclose(image_metrics.psnr(x, y), tm, atol=1e-4)


def test_ssim_matches_definition_and_torchmetrics_convention():
    x, y = smooth_pair()
    ours = image_metrics.ssim(x, y).double()
    assert torch.allclose(ours, reference_ssim(x, y, pad=False), atol=1e-5)
    tm = structural_similarity_index_measure(
        x, y, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, reduction="none"
    ).double()
    # torchmetrics averages the reflect-padded map: the same formula, other border handling.
    assert torch.allclose(tm, reference_ssim(x, y, pad=True), atol=1e-5)
    assert (ours - tm).abs().max() < 0.05


def test_ssim_decreases_with_noise():
    a, b = smooth_pair(noise=0.02)
    _, c = smooth_pair(noise=0.2)
    assert (image_metrics.ssim(b, a) > image_metrics.ssim(c, a)).all()


def test_ms_ssim_only_where_size_allows():
    a, b = smooth_pair(size=32)
    assert image_metrics.ms_ssim(a, b) is None
    a, b = smooth_pair(size=64)
    v = image_metrics.ms_ssim(a, b)
    assert v.shape == (4,) and ((v > 0) & (v <= 1)).all()
    assert torch.allclose(image_metrics.ms_ssim(a, a), torch.ones(4), atol=1e-4)


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="pred and target"):
        image_metrics.mse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


def test_ssim_on_images_smaller_than_the_window_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 11 px"):
        image_metrics.ssim(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
