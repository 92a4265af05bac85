"""The fast paths compute the reference path's function: precomputed constant gate inputs (to
fp32 tolerance) and the accel switches (channels-last exactly up to fp32 rounding, bf16 autocast
to bf16 tolerance)."""

import copy

import pytest
import torch
from conftest import random_batch, tiny_config
from torch.utils.flop_counter import FlopCounterMode

from gqn.accel import AccelConfig, autocast, cpu_has_amx, prepare_batch, prepare_model
from gqn.models import GQN

CPU = torch.device("cpu")
FP32 = AccelConfig(precision="fp32")
CORES = ["shared", "per_step"]


def fast_and_reference(core_weights, **overrides):
    torch.manual_seed(0)
    fast = GQN(tiny_config(core_weights=core_weights, precompute_constant_inputs=True, **overrides))
    reference = GQN(
        tiny_config(core_weights=core_weights, precompute_constant_inputs=False, **overrides)
    )
    reference.load_state_dict(fast.state_dict())
    return fast, reference


def elbo_and_grads(model, batch, accel=FP32):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the posterior noise
    with autocast(accel, CPU):
        terms = model.elbo(batch, sigma=0.7)
    terms.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return terms, grads


@pytest.mark.parametrize("core_weights", CORES)
def test_fast_path_elbo_and_gradients_equal_reference(core_weights):
    fast, reference = fast_and_reference(core_weights)
    batch = random_batch()
    fast_terms, fast_grads = elbo_and_grads(fast, batch)
    ref_terms, ref_grads = elbo_and_grads(reference, batch)
    torch.testing.assert_close(fast_terms.nll, ref_terms.nll, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(fast_terms.kl_per_step, ref_terms.kl_per_step, rtol=1e-4, atol=1e-5)
    assert fast_grads.keys() == ref_grads.keys()
    for name, grad in fast_grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("core_weights", CORES)
def test_fast_path_prior_samples_equal_reference(core_weights):
    fast, reference = fast_and_reference(core_weights)
    with torch.no_grad():  # centre the untrained means in [0, 1]: clamping must not hide them
        for model in (fast, reference):
            model.draw.observation.conv.bias.fill_(0.5)
    batch = random_batch()
    samples = []
    for model in (fast, reference):
        generator = torch.Generator().manual_seed(3)
        with torch.no_grad():
            samples.append(
                model.sample(
                    batch.context_images,
                    batch.context_viewpoints,
                    batch.target_viewpoints,
                    num_samples=4,
                    generator=generator,
                )
            )
    torch.testing.assert_close(samples[0], samples[1], rtol=1e-5, atol=1e-6)
    inside = ((samples[0] > 0) & (samples[0] < 1)).float().mean()
    assert inside > 0.9, f"only {inside:.0%} of the compared pixels are not clamped"


@pytest.mark.parametrize("core_weights", CORES)
def test_fast_path_flops(core_weights):
    # A shared core convolves the constant inputs once instead of L times; L distinct cores each
    # see them once on both paths, so only the shared core saves FLOPs.
    fast, reference = fast_and_reference(core_weights, num_steps=6)
    batch = random_batch()
    flops = []
    for model in (fast, reference):
        with FlopCounterMode(display=False) as counter:
            model.elbo(batch, sigma=0.7).loss.backward()
        flops.append(counter.get_total_flops())
    if core_weights == "shared":
        assert flops[0] < 0.8 * flops[1]
    else:
        assert flops[0] == flops[1]


@pytest.mark.parametrize("core_weights", CORES)
def test_channels_last_gradients_equal_contiguous(core_weights):
    model, _ = fast_and_reference(core_weights)
    batch = random_batch()
    terms, grads = elbo_and_grads(model, batch)
    accel = AccelConfig(precision="fp32", channels_last=True)
    fast = prepare_model(copy.deepcopy(model), accel, CPU)
    batch = prepare_batch(batch, accel, CPU)
    cl_terms, cl_grads = elbo_and_grads(fast, batch, accel)
    torch.testing.assert_close(cl_terms.loss, terms.loss, rtol=1e-5, atol=1e-3)
    for name, grad in grads.items():
        torch.testing.assert_close(cl_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.xfail(
    cpu_has_amx(),
    reason="torch 2.13.0's AMX bf16 path: gradient cosine 0.47-0.84 (precision auto avoids it)",
    strict=True,
)
@pytest.mark.parametrize("core_weights", CORES)
def test_bf16_channels_last_close_to_fp32_reference(core_weights):
    fast, reference = fast_and_reference(core_weights)
    batch = random_batch()
    ref_terms, ref_grads = elbo_and_grads(reference, batch)
    accel = AccelConfig(precision="bf16", channels_last=True)
    fast = prepare_model(fast, accel, CPU)
    batch = prepare_batch(batch, accel, CPU)
    terms, grads = elbo_and_grads(fast, batch, accel)
    torch.testing.assert_close(terms.nll, ref_terms.nll, rtol=2e-3, atol=0.0)
    torch.testing.assert_close(terms.kl, ref_terms.kl, rtol=5e-2, atol=5e-2)
    # Gradient directions agree (bf16 keeps ~3 significant digits per product).
    for name, grad in grads.items():
        cosine = torch.nn.functional.cosine_similarity(
            grad.flatten(), ref_grads[name].flatten(), dim=0
        )
        assert cosine > 0.98 or ref_grads[name].norm() < 1e-6, (name, float(cosine))
