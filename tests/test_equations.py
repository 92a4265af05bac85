"""Equations and directions of the DRAW passes, the ELBO and the losses, each pinned by a test
that fails when one term is wrong (found by mutation testing, docs/testing.md). Micro models
(``conftest.micro``: 8x8 images, 2 DRAW steps, 4 channels) keep every test well under a second."""

import dataclasses
import math

import pytest
import torch
from conftest import micro, scenes, spread
from torch.distributions import Normal, kl_divergence

from gqn.batch import QueryBatch
from gqn.losses import gaussian_nll, kl_normal, squared_error
from gqn.models import GQN

CORES = ["shared", "per_step"]


def posterior(model: GQN, batch: QueryBatch, seed: int = 1):
    r = model.represent(batch.context_images, batch.context_viewpoints)
    cond = model.condition(r, batch.target_viewpoints[:, 0])
    return model.draw.posterior_pass(
        cond, batch.target_images[:, 0], torch.Generator().manual_seed(seed)
    )


def test_kl_normal_direction_and_value():
    # KL[N(0, 1) || N(0, 2^2)] = ln 2 + 1/8 - 1/2; the reverse is -ln 2 + 2 - 1/2.
    one, two, zero = torch.ones(1, 1), torch.full((1, 1), 2.0), torch.zeros(1, 1)
    assert math.isclose(
        kl_normal(zero, one, zero, two).item(), math.log(2) + 1 / 8 - 1 / 2, rel_tol=1e-6
    )
    assert math.isclose(
        kl_normal(zero, two, zero, one).item(), -math.log(2) + 2 - 1 / 2, rel_tol=1e-6
    )
    # the mean term: (q_mean - p_mean)^2 / (2 p_std^2)
    assert math.isclose(
        kl_normal(one, one, zero, two).item(), math.log(2) + 2 / 8 - 1 / 2, rel_tol=1e-6
    )


@pytest.mark.parametrize("core_weights", CORES)
def test_draw_kl_is_posterior_given_prior_at_every_step(core_weights):
    out = posterior(micro(core_weights=core_weights), scenes())
    for l, ((qm, qs), (pm, ps)) in enumerate(zip(out.posteriors, out.priors, strict=True)):
        forward = kl_divergence(Normal(qm, qs), Normal(pm, ps)).flatten(1).sum(1)
        reverse = kl_divergence(Normal(pm, ps), Normal(qm, qs)).flatten(1).sum(1)
        torch.testing.assert_close(out.kl_per_step[:, l], forward)
        assert (forward - reverse).abs().max() > 1e-3  # the direction is observable


@pytest.mark.parametrize("core_weights", CORES)
def test_posterior_latents_are_reparameterised_with_the_generator(core_weights):
    model = micro(core_weights=core_weights)
    out = posterior(model, scenes(), seed=3)
    g = torch.Generator().manual_seed(3)
    for (mean, std), z in zip(out.posteriors, out.latents, strict=True):
        noise = torch.randn(mean.shape, generator=g)
        torch.testing.assert_close(z, mean + std * noise)


@pytest.mark.parametrize("core_weights", CORES)
def test_latents_of_an_fp64_model_use_fp64_noise(core_weights):
    model = micro(core_weights=core_weights).double()
    batch = scenes()
    r = model.represent(batch.context_images.double(), batch.context_viewpoints.double())
    cond = model.condition(r, batch.target_viewpoints[:, 0].double())
    x = batch.target_images[:, 0].double()
    posterior_out = model.draw.posterior_pass(cond, x, torch.Generator().manual_seed(3))
    prior_out = model.draw.prior_pass(cond, torch.Generator().manual_seed(3))
    for dists, out in ((posterior_out.posteriors, posterior_out), (prior_out.priors, prior_out)):
        g = torch.Generator().manual_seed(3)
        for (mean, std), z in zip(dists, out.latents, strict=True):
            noise = torch.randn(mean.shape, generator=g, dtype=torch.float64)
            torch.testing.assert_close(z, mean + std * noise, rtol=0, atol=1e-12)


@pytest.mark.parametrize("core_weights", CORES)
def test_prior_latents_are_sampled_from_the_prior_with_the_generator(core_weights):
    model = micro(core_weights=core_weights)
    batch = scenes()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    cond = model.condition(r, batch.target_viewpoints[:, 0])
    out = model.draw.prior_pass(cond, torch.Generator().manual_seed(3))
    assert len(out.priors) == len(out.latents) == 2
    g = torch.Generator().manual_seed(3)
    for (mean, std), z in zip(out.priors, out.latents, strict=True):
        torch.testing.assert_close(z, mean + std * torch.randn(mean.shape, generator=g))


@pytest.mark.parametrize("core_weights", CORES)
def test_fused_canvas_equals_the_full_resolution_canvas(core_weights):
    # u_L = UpConv(sum h^g) + L b_up and down(u_l) tracked at the hidden resolution (fused path)
    # equal summing UpConv(h^g_l) on the full-resolution canvas, in both passes.
    model = micro(core_weights=core_weights, num_steps=3)
    assert model.draw._fused() == (core_weights == "shared")  # the default takes the fast path
    batch = scenes()
    fused = posterior(model, batch)
    model.draw.fuse_canvas = False
    plain = posterior(model, batch)
    torch.testing.assert_close(fused.canvas, plain.canvas, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused.kl_per_step, plain.kl_per_step, rtol=1e-5, atol=1e-5)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    cond = model.condition(r, batch.target_viewpoints[:, 0])
    plain_prior = model.draw.prior_pass(cond, torch.Generator().manual_seed(2)).canvas
    model.draw.fuse_canvas = True
    fused_prior = model.draw.prior_pass(cond, torch.Generator().manual_seed(2)).canvas
    torch.testing.assert_close(fused_prior, plain_prior, rtol=1e-5, atol=1e-5)
    assert fused_prior.abs().max() > 1e-2


@pytest.mark.parametrize("core_weights", CORES)
def test_a_given_initial_canvas_and_the_last_hidden_state(core_weights):
    # u_L = u_0 + sum_l UpConv(h^g_l) (eqs 4.9, 4.16) with a given u_0 (a multi-scale layer's),
    # and ``hidden`` is h^g_L: the canvas's last increment is UpConv(h^g_L).
    model = micro(core_weights=core_weights)
    draw, batch = model.draw, scenes()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    cond, x = model.condition(r, batch.target_viewpoints[:, 0]), batch.target_images[:, 0]
    u0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    for fuse in (True, False):
        draw.fuse_canvas = fuse
        plain = draw.prior_pass(cond, torch.Generator().manual_seed(2))
        given = draw.prior_pass(cond, torch.Generator().manual_seed(2), u0)
        # the generator never sees the canvas: u_0 is added to the same latents' canvas
        torch.testing.assert_close(given.canvas, plain.canvas + u0)
        draw.num_steps = 1
        first = draw.prior_pass(cond, torch.Generator().manual_seed(2))
        upconv = draw.generator_steps[0].upconv
        torch.testing.assert_close(first.canvas, upconv(first.hidden), rtol=1e-5, atol=1e-5)
        posterior_1 = draw.posterior_pass(cond, x, torch.Generator().manual_seed(2), u0)
        torch.testing.assert_close(
            posterior_1.canvas, u0 + upconv(posterior_1.hidden), rtol=1e-5, atol=1e-5
        )
        draw.num_steps = 2
        last = draw.generator_steps[-1].upconv  # step 2's
        step_2 = plain.canvas - first.canvas
        torch.testing.assert_close(step_2, last(plain.hidden), rtol=1e-5, atol=1e-5)
        posterior = draw.posterior_pass(cond, x, torch.Generator().manual_seed(2), u0)
        without = draw.posterior_pass(cond, x, torch.Generator().manual_seed(2))
        assert (posterior.kl_per_step - without.kl_per_step).abs().max() > 1e-4  # q sees u_0
        if fuse:
            fused_posterior = posterior
    torch.testing.assert_close(fused_posterior.canvas, posterior.canvas, rtol=1e-5, atol=1e-5)


def test_per_step_weights_are_used_at_their_own_step():
    model = micro(core_weights="per_step")
    batch = scenes()
    before = posterior(model, batch)
    with torch.no_grad():
        model.draw.generator_steps[1].prior.conv.bias.add_(1.0)
    after = posterior(model, batch)
    torch.testing.assert_close(after.priors[0][0], before.priors[0][0])
    assert not torch.allclose(after.priors[1][0], before.priors[1][0])


def test_elbo_terms_are_the_observation_nll_and_its_error():
    model = spread(micro())
    batch = scenes(n=2)
    batch.target_mask[1, 1] = False
    batch.context_mask[0, 1] = False
    batch.context_images[0, 1] = float("nan")  # a masked context slot reaches nothing
    torch.manual_seed(4)
    terms = model.elbo(batch, 0.3)
    assert torch.isfinite(terms.nll_per_target).all() and torch.isfinite(terms.kl).all()
    assert (terms.mean < 0).any() and (terms.mean > 1).any()  # the NLL scores the raw mean
    torch.manual_seed(4)
    recon = model.reconstruct(batch)
    torch.testing.assert_close(recon, terms.mean.clamp(0, 1))
    x = batch.target_images
    log_p = Normal(terms.mean, 0.3).log_prob(x).flatten(2).sum(2)
    torch.testing.assert_close(terms.nll_per_target, -log_p)
    error = (x - terms.mean.clamp(0, 1)).pow(2).flatten(2).mean(2)
    torch.testing.assert_close(terms.squared_error_per_target, error)
    assert terms.num_dims == 3 * 8 * 8
    # the KL of a masked target is not counted; the others' are summed
    torch.manual_seed(4)
    full = model.elbo(
        dataclasses.replace(batch, target_mask=torch.ones(2, 2, dtype=torch.bool)), 0.3
    )
    assert torch.allclose(terms.kl_groups["draw"][0], full.kl_groups["draw"][0])
    assert (terms.kl_groups["draw"][1] < full.kl_groups["draw"][1]).all()


def test_forward_is_the_elbo_and_ddp_looks_for_unused_parameters_only_when_k_can_be_0():
    model = micro()
    batch = scenes(b=1)  # one scene with one target
    torch.manual_seed(2)
    called = model(batch, 0.5)
    torch.manual_seed(2)
    assert torch.equal(called.nll, model.elbo(batch, 0.5).nll)
    assert model.ddp_find_unused_parameters(0) and not model.ddp_find_unused_parameters(1)


def test_gaussian_nll_keeps_fp64_sigma():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.rand(2, 3, 4, 4, generator=g).double(), torch.rand(2, 3, 4, 4, generator=g)
    reference = -Normal(mean.double(), 0.7).log_prob(x).flatten(1).sum(1)
    nll = gaussian_nll(x, mean.double(), 0.7)
    assert nll.dtype == torch.float64
    torch.testing.assert_close(nll, reference, rtol=1e-13, atol=0)


def test_nll_and_error_of_low_precision_images_are_computed_in_fp32():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g) * 1.2
    x16, mean16 = x.bfloat16(), mean.bfloat16()
    nll, error = gaussian_nll(x16, mean16, 0.7), squared_error(x16, mean16)
    assert nll.dtype == error.dtype == torch.float32
    assert torch.equal(nll, gaussian_nll(x16.float(), mean16.float(), 0.7))
    assert torch.equal(error, squared_error(x16.float(), mean16.float()))
