import pytest
import torch
from conftest import random_batch, tiny_config

from gqn.batch import QueryBatch
from gqn.models import GQN, GQNConfig


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("representation", ["pyramid", "tower", "pool"])
@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("core_weights", ["shared", "per_step"])
def test_shapes(representation, size, core_weights):
    torch.manual_seed(0)
    model = GQN(
        tiny_config(
            image_size=size, representation=representation, core_weights=core_weights, num_steps=2
        )
    )
    batch = random_batch(b=2, k=2, size=size)
    terms = model.elbo(batch, sigma=1.0)
    assert terms.nll.shape == (2,) and terms.kl_per_step.shape == (2, 2)
    assert terms.num_dims == 3 * size * size
    assert model.reconstruct(batch).shape == (2, 1, 3, size, size)
    samples = model.sample(
        batch.context_images, batch.context_viewpoints, batch.target_viewpoints, num_samples=3
    )
    assert samples.shape == (2, 3, 1, 3, size, size)
    assert samples.min() >= 0 and samples.max() <= 1


def test_parameter_count_shared_independent_of_steps():
    counts = [n_params(GQN(tiny_config(num_steps=L))) for L in (1, 4, 12)]
    assert counts[0] == counts[1] == counts[2]


def test_parameter_count_per_step_grows_linearly():
    counts = [n_params(GQN(tiny_config(num_steps=L, core_weights="per_step"))) for L in (1, 2, 5)]
    per_step = counts[1] - counts[0]
    assert per_step > 0
    assert counts[2] == counts[0] + 4 * per_step
    assert counts[0] == n_params(GQN(tiny_config(num_steps=1)))


def test_paper_configuration_parameter_count_is_sane():
    # Broadcasting v and r by repetition keeps the paper model small (one public port with
    # learned broadcast layers reached ~572M parameters).
    assert n_params(GQN(GQNConfig())) < 20_000_000


def test_inference_network_never_called_during_sampling(tiny_model):
    calls = []
    for module in tiny_model.draw.inference_steps.modules():
        module.register_forward_hook(lambda *_: calls.append(1))
    batch = random_batch()
    tiny_model.sample(batch.context_images, batch.context_viewpoints, batch.target_viewpoints)
    r = tiny_model.represent(batch.context_images, batch.context_viewpoints)
    tiny_model.generate(r, batch.target_viewpoints)
    assert calls == []
    tiny_model.elbo(batch, 1.0)
    assert calls  # the hooks do fire in training


@pytest.mark.parametrize("core_weights", ["shared", "per_step"])
def test_prior_at_step_l_does_not_depend_on_z_l(core_weights):
    torch.manual_seed(0)
    model = GQN(tiny_config(core_weights=core_weights, num_steps=4))
    batch = random_batch()
    r = model.represent(batch.context_images, batch.context_viewpoints)
    out = model.draw.posterior_pass(
        model.condition(r, batch.target_viewpoints[:, 0]), batch.target_images[:, 0]
    )
    for l in range(4):
        for later in range(l, 4):
            grads = torch.autograd.grad(
                out.priors[l][0].sum() + out.priors[l][1].sum(),
                out.latents[later],
                retain_graph=True,
                allow_unused=True,
            )
            assert grads[0] is None or torch.count_nonzero(grads[0]) == 0
        if l + 1 < 4:  # the next step's prior does see z_l (so the check above can fail)
            g = torch.autograd.grad(out.priors[l + 1][0].sum(), out.latents[l], retain_graph=True)
            assert torch.count_nonzero(g[0]) > 0


def test_first_prior_comes_from_the_zero_state(tiny_model):
    # pi_1 = N(eta^pi(h^g_1)) with h^g_1 = 0: the same for every scene and query.
    a, b = random_batch(seed=1), random_batch(seed=2)
    out_a = tiny_model.draw.posterior_pass(
        tiny_model.condition(
            tiny_model.represent(a.context_images, a.context_viewpoints), a.target_viewpoints[:, 0]
        ),
        a.target_images[:, 0],
    )
    out_b = tiny_model.draw.posterior_pass(
        tiny_model.condition(
            tiny_model.represent(b.context_images, b.context_viewpoints), b.target_viewpoints[:, 0]
        ),
        b.target_images[:, 0],
    )
    torch.testing.assert_close(out_a.priors[0][0], out_b.priors[0][0])
    assert not torch.allclose(out_a.priors[1][0], out_b.priors[1][0])


def _second_posterior(model, batch):
    r = model.represent(batch.context_images, batch.context_viewpoints)
    out = model.draw.posterior_pass(
        model.condition(r, batch.target_viewpoints[:, 0]), batch.target_images[:, 0]
    )
    return out.posteriors[1][0]


@pytest.mark.parametrize("part", ["canvas", "generator_state"])
def test_inference_core_sees_the_canvas_and_generator_state(tiny_model, part):
    # eq 4.12: the inference core's per-step inputs are [down(u_l), h^g_l]. Zeroing the gate
    # weights of one of them must change q_2 (q_1 sees u_1 = 0 and h^g_1 = 0 only).
    batch = random_batch()
    before = _second_posterior(tiny_model, batch)
    core = tiny_model.draw.inference_steps[0].core
    canvas = tiny_model.draw.canvas_channels
    start = core.const_channels + (0 if part == "canvas" else canvas)
    width = canvas if part == "canvas" else tiny_model.config.hidden_channels
    with torch.no_grad():
        core.gates.weight[:, start : start + width] = 0
    assert not torch.allclose(_second_posterior(tiny_model, batch), before)


def test_posterior_comes_after_the_inference_update(tiny_model):
    # eq 4.13: q_1 = N(eta^q(h^e_2)) with h^e_2 = ConvLSTM^e(0, 0, [.., x^q, ..]): it sees x^q.
    batch = random_batch()
    query = batch.target_images[:, 0].clone().requires_grad_(True)
    r = tiny_model.represent(batch.context_images, batch.context_viewpoints)
    out = tiny_model.draw.posterior_pass(
        tiny_model.condition(r, batch.target_viewpoints[:, 0]), query
    )
    (g,) = torch.autograd.grad(out.posteriors[0][0].sum(), query)
    assert torch.count_nonzero(g) > 0


@pytest.mark.parametrize("core_weights", ["shared", "per_step"])
def test_every_parameter_gets_a_gradient(core_weights):
    torch.manual_seed(0)
    model = GQN(tiny_config(core_weights=core_weights))
    model.elbo(random_batch(), sigma=0.7).loss.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or torch.count_nonzero(p.grad) == 0
    ]
    if core_weights == "shared":
        assert missing == []
    else:
        # With distinct weights, step 1's prior head and canvas downsampler only ever see the
        # zero initial state (h^g_1 = 0, u_1 = 0), so only their biases can learn.
        assert missing == [
            "draw.generator_steps.0.prior.conv.weight",
            "draw.inference_steps.0.downsample_canvas.weight",
        ]


def test_fixed_seed_gives_identical_samples(tiny_model):
    with torch.no_grad():  # centre the untrained outputs in [0, 1] so clamping hides nothing
        tiny_model.draw.observation.conv.bias.fill_(0.5)
    batch = random_batch()
    args = (batch.context_images, batch.context_viewpoints, batch.target_viewpoints)
    s1 = tiny_model.sample(*args, num_samples=2, generator=torch.Generator().manual_seed(7))
    s2 = tiny_model.sample(*args, num_samples=2, generator=torch.Generator().manual_seed(7))
    s3 = tiny_model.sample(*args, num_samples=2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
    assert not torch.equal(s1[:, 0], s1[:, 1])  # samples of one query differ


def test_generate_reuses_r_for_many_queries(tiny_model):
    batch = random_batch(b=1)
    r = tiny_model.represent(batch.context_images, batch.context_viewpoints)
    queries = torch.randn(1, 5, 7)
    many = tiny_model.generate(r, queries, generator=torch.Generator().manual_seed(0))[:, 0]
    assert many.shape == (1, 5, 3, 32, 32)
    # the same as recomputing r for every query from repeated context views
    repeated = tiny_model.represent(
        batch.context_images.expand(5, -1, -1, -1, -1), batch.context_viewpoints.expand(5, -1, -1)
    )
    each = tiny_model.generate(
        repeated, queries.transpose(0, 1), generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(many[0], each[:, 0, 0], rtol=1e-4, atol=1e-5)


def test_reference_path_equals_fast_path():
    torch.manual_seed(0)
    fast = GQN(tiny_config(precompute_constant_inputs=True))
    ref = GQN(tiny_config(precompute_constant_inputs=False))
    ref.load_state_dict(fast.state_dict())
    batch = random_batch()
    torch.manual_seed(3)
    a = fast.elbo(batch, 0.7)
    torch.manual_seed(3)
    b = ref.elbo(batch, 0.7)
    torch.testing.assert_close(a.nll, b.nll, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(a.kl_per_step, b.kl_per_step, rtol=1e-5, atol=1e-4)


def test_mixed_context_counts_and_zero_context(tiny_model):
    batch = random_batch(b=3, k=2)
    batch.context_mask[1, 1] = False
    batch.context_mask[2] = False
    assert torch.isfinite(tiny_model.elbo(batch, 0.7).loss)
    empty = QueryBatch.full_context(
        batch.context_images[:, :0],
        batch.context_viewpoints[:, :0],
        batch.target_images,
        batch.target_viewpoints,
    )
    assert torch.isfinite(tiny_model.elbo(empty, 0.7).loss)


def test_wrong_image_size_is_a_clear_error(tiny_model):
    batch = random_batch(size=64)
    with pytest.raises(ValueError, match="image_size=32"):
        tiny_model.elbo(batch, 0.7)


def test_wrong_viewpoints_mask_and_r_are_clear_errors(tiny_model):
    batch = random_batch()
    with pytest.raises(ValueError, match="encoded viewpoints"):
        tiny_model.represent(batch.context_images, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="context_mask"):
        tiny_model.represent(batch.context_images, batch.context_viewpoints, torch.ones(2, 3))
    with pytest.raises(ValueError, match="r must be"):
        tiny_model.generate(torch.zeros(2, 7, 8, 8), batch.target_viewpoints)


def test_bad_config_values():
    with pytest.raises(ValueError, match="multiple of 8"):
        GQNConfig(image_size=50)
    with pytest.raises(ValueError, match="num_steps"):
        GQNConfig(num_steps=0)
    with pytest.raises(ValueError, match="core_weights"):
        GQN(GQNConfig(core_weights="sometimes"))
    with pytest.raises(ValueError, match="aggregation must be 'sum' or 'mean'"):
        GQNConfig(aggregation="max")


def test_mean_aggregation_model_does_not_grow_r_with_repeated_views():
    torch.manual_seed(0)
    summed = GQN(tiny_config(image_size=32))
    averaged = GQN(tiny_config(image_size=32, aggregation="mean"))
    averaged.load_state_dict(summed.state_dict())  # same weights, only the reduction differs
    batch = random_batch(b=2, k=1, seed=3)
    x, v = batch.context_images, batch.context_viewpoints
    x4, v4 = x.expand(2, 4, *x.shape[2:]), v.expand(2, 4, 7)
    torch.testing.assert_close(averaged.represent(x4, v4), summed.represent(x, v))
    torch.testing.assert_close(summed.represent(x4, v4), 4 * summed.represent(x, v))


@pytest.mark.slow
def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GQN(tiny_config(image_size=32, num_steps=2, hidden_channels=16))
    batch = random_batch(b=4, k=2, seed=5)
    # A structured target: smooth colour gradients the model can learn quickly.
    ramp = torch.linspace(0, 1, 32)
    batch.target_images = torch.stack(
        [
            torch.stack(
                [
                    ramp[None].expand(32, 32) * (i + 1) / 4,
                    ramp[:, None].expand(32, 32),
                    torch.full((32, 32), 0.2 * i),
                ]
            )
            for i in range(4)
        ]
    )[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(600):
        terms = model.elbo(batch, sigma=0.1)
        opt.zero_grad()
        terms.loss.backward()
        opt.step()
        first = terms.nll.mean().item() if first is None else first
    last = model.elbo(batch, sigma=0.1).nll.mean().item()
    floor = 3 * 32 * 32 * 0.5 * torch.log(torch.tensor(2 * torch.pi * 0.01)).item()
    # the squared-error part of the NLL falls at least 20-fold
    assert (last - floor) < (first - floor) / 20


def test_elbo_with_a_given_r_equals_computing_it(tiny_model):
    batch = random_batch(b=3, k=2)
    r = tiny_model.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
    torch.manual_seed(5)
    own = tiny_model.elbo(batch, 0.7)
    torch.manual_seed(5)
    given = tiny_model.elbo(batch, 0.7, r)
    torch.testing.assert_close(given.nll, own.nll, rtol=0, atol=0)
    torch.testing.assert_close(given.kl_per_step, own.kl_per_step, rtol=0, atol=0)
    torch.manual_seed(5)
    other = tiny_model.elbo(batch, 0.7, torch.zeros_like(r))
    assert not torch.allclose(other.nll, own.nll)  # the given r is the one used
