"""Equations, directions and orders of the model and loss code, each pinned by a test that fails
when one term is wrong (found by mutation testing, docs/testing.md). Micro models (8x8 images,
2 DRAW steps, 4 channels) keep every test well under a second."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from gqn.batch import QueryBatch
from gqn.losses import gaussian_nll, kl_normal
from gqn.models import GQN, GQNConfig
from gqn.models.convlstm import ConvLSTMCell
from gqn.models.heads import MIN_STD, GaussianHead

CORES = ["shared", "per_step"]


def micro(**overrides) -> GQN:
    base = dict(
        image_size=8,
        r_channels=4,
        hidden_channels=4,
        canvas_channels=4,
        latent_channels=2,
        num_steps=2,
        kernel_size=3,
    )
    base.update(overrides)
    torch.manual_seed(0)
    model = GQN(GQNConfig(**base))
    with torch.no_grad():  # centre the untrained means in [0, 1] so clamping hides nothing
        model.draw.observation.conv.bias.fill_(0.5)
    return model


def scenes(b=2, k=2, n=1, seed=0) -> QueryBatch:
    g = torch.Generator().manual_seed(seed)
    return QueryBatch.full_context(
        torch.rand(b, k, 3, 8, 8, generator=g),
        torch.randn(b, k, 7, generator=g),
        torch.rand(b, n, 3, 8, 8, generator=g),
        torch.randn(b, n, 7, generator=g),
    )


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


def spread(model: GQN) -> GQN:
    """Means spread well beyond [0, 1], so that clamping shows."""
    with torch.no_grad():
        model.draw.observation.conv.weight.mul_(200.0)
    return model


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


def deterministic_prior(model: GQN) -> GQN:
    """Prior std at its floor (1e-4): a prior sample is a function of (r, v) only."""
    with torch.no_grad():
        for step in model.draw.generator_steps:
            conv, latent = step.prior.conv, model.config.latent_channels
            conv.weight[latent:] = 0
            conv.bias[latent:] = -50.0
    return model


def test_generate_is_scene_sample_view_ordered():
    model = deterministic_prior(micro())
    batch = scenes(b=2, k=2)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    v = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(9))
    images = model.generate(r, v, num_samples=2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 2, 3, 3, 8, 8)
    for i in range(2):
        for j in range(3):
            alone = model.generate(r[i : i + 1], v[i : i + 1, j : j + 1])
            assert alone.shape == (1, 1, 1, 3, 8, 8)  # one sample by default
            alone = alone[0, 0, 0]
            for s in range(2):
                torch.testing.assert_close(images[i, s, j], alone, rtol=0, atol=1e-3)
    assert (images[:, 0, 0] - images[:, 0, 1]).abs().max() > 1e-2  # views differ
    assert (images[0] - images[1]).abs().max() > 1e-2  # scenes differ


def test_prior_means_are_clamped_to_the_unit_interval():
    model = spread(micro())
    batch = scenes()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    images = model.generate(r, batch.target_viewpoints, 2)
    assert images.min() == 0 and images.max() == 1  # raw means beyond both ends, clamped


def test_return_sample_is_the_mean_plus_sigma_times_noise_drawn_after_the_latents():
    model = micro()
    batch = scenes()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    g = torch.Generator().manual_seed(5)
    means = model.generate(r, batch.target_viewpoints, 2, g)
    noise = torch.randn(means.shape, generator=g)
    again, sample = model.generate(
        r, batch.target_viewpoints, 2, torch.Generator().manual_seed(5), True, 0.3
    )
    assert torch.equal(again, means)
    torch.testing.assert_close(sample, means + 0.3 * noise)
    for sigma in (None, 0.0):
        with pytest.raises(ValueError, match="sigma > 0"):
            model.generate(r, batch.target_viewpoints, 1, None, True, sigma)
    # the noise is drawn in the model's precision
    model = model.double()
    r = model.represent(batch.context_images.double(), batch.context_viewpoints.double())
    g = torch.Generator().manual_seed(5)
    means = model.generate(r, batch.target_viewpoints.double(), 1, g)
    noise = torch.randn(means.shape, generator=g, dtype=torch.float64)
    _, sample = model.generate(
        r, batch.target_viewpoints.double(), 1, torch.Generator().manual_seed(5), True, 0.3
    )
    torch.testing.assert_close(sample, means + 0.3 * noise, rtol=0, atol=1e-12)


def test_gaussian_head_mean_then_softplus_std():
    head = GaussianHead(3, 2, kernel_size=3)
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.bias.copy_(torch.tensor([0.5, -1.0, 2.0, -3.0]))
    mean, std = head(torch.randn(1, 3, 4, 4))
    torch.testing.assert_close(mean[0, :, 0, 0], torch.tensor([0.5, -1.0]))
    expected = F.softplus(torch.tensor([2.0, -3.0])) + MIN_STD
    torch.testing.assert_close(std[0, :, 0, 0], expected)
    assert MIN_STD == 1e-4


@pytest.mark.parametrize("precompute", [True, False])
def test_convlstm_step_equations(precompute):
    # gates (i, f, o, g) = W * [constant, input, h] + b; c' = s(f) c + s(i) tanh(g);
    # h' = s(o) tanh(c')
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 4, kernel_size=3, precompute_constant=precompute)
    g = torch.Generator().manual_seed(1)
    const, step = torch.randn(2, 2, 5, 5, generator=g), torch.randn(2, 3, 5, 5, generator=g)
    c, h = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)
    c2, h2 = cell(cell.prepare(const), [step], (c, h))
    i, f, o, cand = cell.gates(torch.cat([const, step, h], 1)).chunk(4, 1)
    expected_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
    torch.testing.assert_close(c2, expected_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h2, torch.sigmoid(o) * torch.tanh(expected_c), rtol=1e-5, atol=1e-5)


def test_silent_broadcasts_are_refused():
    model = micro()
    batch = scenes(b=2)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    assert r.shape == (2, 4, 2, 2)
    with pytest.raises(ValueError, match="r must be"):
        model.generate(r[..., :1], batch.target_viewpoints)  # (b, C, 2, 1)
    with pytest.raises(ValueError, match="r must be"):
        model.generate(r[:1], batch.target_viewpoints)  # batch 1 for 2 scenes
    with pytest.raises(ValueError, match="r must be"):
        model.elbo(batch, 0.7, r=r[:1])
    with pytest.raises(ValueError, match="sigma must be"):
        model.elbo(batch, torch.full((2,), 0.7))
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="sigma must be"):
        gaussian_nll(x, x, torch.full((2, 1, 1, 1), 0.7))
    with pytest.raises(ValueError, match="shape of x"):
        gaussian_nll(x, x[:1], 0.7)
    for viewpoints in (batch.target_viewpoints[:, 0], batch.target_viewpoints[..., :5]):
        with pytest.raises(ValueError, match="viewpoints must be"):
            model.generate(r, viewpoints)
    per_dim = torch.full_like(x, 0.7)  # a sigma of x's shape is one per dimension
    torch.testing.assert_close(gaussian_nll(x, x * 0.5, per_dim), gaussian_nll(x, x * 0.5, 0.7))


def test_views_are_checked_against_the_model_by_name():
    model = micro()
    batch = scenes(n=2)
    x, v, mask = batch.context_images, batch.context_viewpoints, batch.context_mask
    with pytest.raises(ValueError, match=r"context_images must be \(b, m, 3, 8, 8\)"):
        model.represent(x[..., :4, :4], v)
    with pytest.raises(ValueError, match=r"context_viewpoints must be \(b=2, m=2, 7\)"):
        model.represent(x, v[..., :5])
    with pytest.raises(ValueError, match="context_mask must be a bool"):
        model.represent(x, v, mask.float())
    g = torch.Generator().manual_seed(0)
    small = QueryBatch.full_context(  # targets are checked before the context is used
        torch.rand(2, 2, 3, 4, 4, generator=g),
        torch.randn(2, 2, 7, generator=g),
        torch.rand(2, 1, 3, 4, 4, generator=g),
        torch.randn(2, 1, 7, generator=g),
    )
    with pytest.raises(ValueError, match=r"target_images must be \(b, m, 3, 8, 8\)"):
        model.elbo(small, 0.5)
    five = dataclasses.replace(
        batch,
        context_viewpoints=batch.context_viewpoints[..., :5],
        target_viewpoints=batch.target_viewpoints[..., :5],
    )
    with pytest.raises(ValueError, match=r"target_viewpoints must be \(b=2, m=2, 7\)"):
        model.reconstruct(five)


def test_sample_is_represent_then_generate():
    model = micro()
    batch = scenes(n=2)
    args = (batch.context_images, batch.context_viewpoints)
    sampled = model.sample(
        *args, batch.target_viewpoints, None, 2, torch.Generator().manual_seed(1)
    )
    r = model.represent(*args)
    generated = model.generate(r, batch.target_viewpoints, 2, torch.Generator().manual_seed(1))
    assert torch.equal(sampled, generated)


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


@pytest.mark.parametrize("core_weights", CORES)
def test_core_weights_and_kernel_sizes(core_weights):
    model = micro(core_weights=core_weights, num_steps=3, kernel_size=5)
    copies = 1 if core_weights == "shared" else 3
    draw = model.draw
    assert len(draw.generator_steps) == len(draw.inference_steps) == copies
    for step in [*draw.generator_steps, *draw.inference_steps]:
        assert step.core.gates.kernel_size == (5, 5)
        head = step.prior if hasattr(step, "prior") else step.posterior
        assert head.conv.kernel_size == (5, 5)


def test_config_bounds():
    for bad in (dict(image_size=50), dict(image_size=4), dict(num_steps=0), dict(kernel_size=4)):
        with pytest.raises(ValueError):
            GQNConfig(**bad)
    GQNConfig(num_steps=1, latent_channels=1, kernel_size=1, image_size=8)
