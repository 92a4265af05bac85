import math

import pytest
import torch

from gqn.losses import (
    ELBOTerms,
    gaussian_nll,
    gaussian_nll_floor,
    kl_normal,
    nats_to_bits_per_dim,
    squared_error,
)

ONE_TARGET = torch.ones(2, 1, dtype=torch.bool)
KL = {"draw": torch.zeros(2, 1)}


def test_nll_of_perfect_mean_is_the_normalising_constant():
    x = torch.rand(2, 3, 64, 64)
    nll = gaussian_nll(x, x.clone(), 0.7)
    expected = 12288 * 0.5 * math.log(2 * math.pi * 0.49)
    torch.testing.assert_close(nll, torch.full((2,), expected), rtol=1e-6, atol=1e-3)
    assert abs(expected - 6909.0) < 1.0
    assert math.isclose(gaussian_nll_floor(12288, 0.7), expected)


def test_nll_matches_torch_normal_log_prob():
    g = torch.Generator().manual_seed(1)
    x, mu = torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
    ref = -torch.distributions.Normal(mu, 1.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_nll(x, mu, 1.3), ref)


def test_closed_form_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    qm, pm = torch.randn(1, 4, generator=g), torch.randn(1, 4, generator=g)
    qs, ps = torch.rand(1, 4, generator=g) + 0.3, torch.rand(1, 4, generator=g) + 0.3
    q, p = torch.distributions.Normal(qm, qs), torch.distributions.Normal(pm, ps)
    z = q.sample((400_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()
    closed = kl_normal(qm, qs, pm, ps)[0]
    assert abs(mc - closed) < 0.02 * max(1.0, closed.item())
    torch.testing.assert_close(closed, torch.distributions.kl_divergence(q, p).sum())


def test_kl_nonnegative_and_zero_when_equal():
    g = torch.Generator().manual_seed(2)
    qm, pm = torch.randn(64, 3, 4, 4, generator=g), torch.randn(64, 3, 4, 4, generator=g)
    qs, ps = (
        torch.rand(64, 3, 4, 4, generator=g) + 0.05,
        torch.rand(64, 3, 4, 4, generator=g) + 0.05,
    )
    assert (kl_normal(qm, qs, pm, ps) >= 0).all()
    torch.testing.assert_close(kl_normal(qm, qs, qm, qs), torch.zeros(64))


def test_units_and_summary():
    terms = ELBOTerms(
        torch.tensor([[100.0], [300.0]]), {"draw": torch.ones(2, 3)}, ONE_TARGET, num_dims=12
    )
    s = terms.summary()
    assert s["nll_nats"].item() == 200.0 and s["kl_nats"].item() == 3.0
    assert s["elbo_nats"].item() == -203.0
    assert math.isclose(s["nll_bits_per_dim"].item(), 200 / (12 * math.log(2)), rel_tol=1e-6)
    assert math.isclose(nats_to_bits_per_dim(math.log(2) * 12, 12), 1.0)
    assert terms.loss.item() == 203.0
    assert s["kl_step_2"].item() == 1.0
    assert s["kl_draw_nats"].item() == 3.0


def test_several_targets_and_kl_groups():
    """NLL per target summed over the valid ones (a NaN in a masked slot does not leak); KL in
    named groups, per step keys across groups in order."""
    mask = torch.tensor([[True, True, False], [True, False, False]])
    nll = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), 6.0]])
    kl = {"layer0": torch.ones(2, 2), "layer1": torch.full((2, 1), 3.0)}
    terms = ELBOTerms(nll, kl, mask, num_dims=12)
    torch.testing.assert_close(terms.nll, torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(terms.kl, torch.tensor([5.0, 5.0]))
    s = terms.summary()
    assert s["kl_layer0_nats"].item() == 2.0 and s["kl_layer1_nats"].item() == 3.0
    assert s["kl_step_2"].item() == 3.0 and "kl_step_3" not in s
    assert math.isclose(s["kl_layer1_bits_per_dim"].item(), 3 / (12 * math.log(2)), rel_tol=1e-6)
    with pytest.raises(ValueError, match="target_mask"):
        ELBOTerms(nll, kl, mask[:, :2], num_dims=12)
    with pytest.raises(ValueError, match="kl_groups"):
        ELBOTerms(nll, {}, mask, num_dims=12)


def test_squared_error_clamps_and_summary_reports_psnr():
    x = torch.zeros(2, 3, 2, 2)
    mean = torch.full((2, 3, 2, 2), 0.1)
    mean[1] = -5.0  # clamped to 0: a perfect reconstruction
    err = squared_error(x, mean)
    torch.testing.assert_close(err, torch.tensor([0.01, 0.0]))
    terms = ELBOTerms(
        torch.zeros(2, 1), KL, ONE_TARGET, num_dims=12, squared_error_per_target=err[:, None]
    )
    s = terms.summary()
    assert math.isclose(s["recon_mse"].item(), 0.005, rel_tol=1e-6)
    assert math.isclose(s["recon_psnr_db"].item(), -10 * math.log10(0.005), rel_tol=1e-5)
    assert "recon_mse" not in ELBOTerms(torch.zeros(2, 1), KL, ONE_TARGET, 12).summary()
    # a bf16 mean (autocast) is scored in fp32, outside autograd
    g = torch.Generator().manual_seed(0)
    target, pred = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    pred_bf16 = pred.bfloat16().requires_grad_()
    err = squared_error(target, pred_bf16)
    assert err.dtype == torch.float32 and not err.requires_grad
    expected = (target - pred_bf16.detach().float()).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(err, expected)
