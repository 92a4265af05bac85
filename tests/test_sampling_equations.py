"""Sampling (``generate``, ``sample``: orders, clamping, noise, devices) and the checks of a
model's inputs, on micro models; part of the mutation-testing selection (docs/testing.md)."""

import dataclasses

import pytest
import torch
from conftest import micro, scenes, spread

from gqn.batch import QueryBatch
from gqn.losses import gaussian_nll
from gqn.models import GQN


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


def test_sample_is_represent_then_generate():
    model = micro()
    batch = scenes(n=2)
    args, v = (batch.context_images, batch.context_viewpoints), batch.target_viewpoints
    mask = torch.tensor([[True, False], [True, True]])
    sampled = model.sample(*args, v, mask, 2, torch.Generator().manual_seed(1))
    r = model.represent(*args, mask)
    generated = model.generate(r, v, 2, torch.Generator().manual_seed(1))
    assert torch.equal(sampled, generated)
    unmasked = model.sample(*args, v, None, 2, torch.Generator().manual_seed(1))
    assert not torch.equal(sampled, unmasked)  # the mask reaches represent
    assert model.sample(*args, v).shape == (2, 1, 2, 3, 8, 8)  # one sample by default


def test_a_1x1_r_is_repeated_over_the_hidden_grid():
    model = micro(representation="pool")
    batch = scenes()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    assert r.shape == (2, 4, 1, 1)
    cond = model.condition(r, batch.target_viewpoints[:, 0])
    assert torch.equal(cond[:, 7:], r.expand(2, 4, 2, 2))
    assert torch.equal(cond[:, :7], batch.target_viewpoints[:, 0, :, None, None].expand(2, 7, 2, 2))
    assert model.generate(r, batch.target_viewpoints).shape == (2, 1, 1, 3, 8, 8)


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


def test_every_tensor_is_made_on_the_models_device():
    # the meta device (shapes only) stands in for a GPU: noise or canvases made on the CPU
    # would not mix with the model's tensors there
    model = micro().to("meta")
    batch = scenes(n=2).to("meta")
    terms = model.elbo(batch, 0.5)
    assert terms.nll_per_target.device.type == terms.kl_groups["draw"].device.type == "meta"
    r = model.represent(batch.context_images, batch.context_viewpoints)
    means, sample = model.generate(r, batch.target_viewpoints, 2, None, True, 0.3)
    assert means.device.type == sample.device.type == "meta"
    assert sample.shape == (2, 2, 2, 3, 8, 8)
    x = torch.rand(2, 3, 4, 4)
    per_dim = torch.full_like(x, 0.7)  # a sigma per dimension, on the CPU, follows the images
    assert gaussian_nll(x.to("meta"), x.to("meta"), per_dim).device.type == "meta"
