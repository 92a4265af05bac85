import copy

import pytest
import torch
from conftest import random_batch, tiny_config

import gqn.accel as accel_module
from gqn.accel import AccelConfig, autocast, full_fp32, prepare_batch, prepare_model, resolve
from gqn.losses import gaussian_nll, kl_normal
from gqn.models import GQN

CPU = torch.device("cpu")


def elbo_terms(model, batch, accel, seed=0):
    torch.manual_seed(seed)
    with autocast(accel, CPU):
        terms = model(batch, sigma=0.7)  # forward, so that a compiled model runs compiled
    return terms


@pytest.mark.parametrize("native_bf16", [True, False])
@pytest.mark.parametrize("amx", [True, False])
def test_resolve_auto_follows_native_bf16_and_keeps_explicit_choices(monkeypatch, native_bf16, amx):
    """auto: bf16 on a CPU with native bf16 unless it has AMX (whose bf16 gradients are off)."""
    monkeypatch.setattr(accel_module, "cpu_has_native_bf16", lambda: native_bf16)
    monkeypatch.setattr(accel_module, "cpu_has_amx", lambda: amx)
    assert resolve(AccelConfig(), CPU).precision == ("bf16" if native_bf16 and not amx else "fp32")
    assert resolve(AccelConfig(precision="fp32"), CPU).precision == "fp32"
    assert resolve(AccelConfig(precision="bf16"), CPU).precision == "bf16"
    assert resolve(AccelConfig(precision="fp32", compile=True), "cpu").compile


def test_bad_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="precision"):
        AccelConfig(precision="fp16")


def test_autocast_is_a_no_op_for_fp32():
    with autocast(AccelConfig(precision="fp32"), CPU):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(AccelConfig(precision="bf16"), CPU):
        assert torch.is_autocast_enabled("cpu")


def test_loss_terms_are_fp32_for_bf16_inputs():
    x = torch.rand(2, 3, 8, 8)
    mean = torch.rand(2, 3, 8, 8)
    nll = gaussian_nll(x, mean.bfloat16(), 0.7)
    assert nll.dtype == torch.float32
    torch.testing.assert_close(
        nll, gaussian_nll(x, mean.bfloat16().float(), 0.7), rtol=1e-6, atol=1e-4
    )
    args = [torch.rand(2, 3, 4, 4) + 0.1 for _ in range(4)]
    kl = kl_normal(*(a.bfloat16() for a in args))
    assert kl.dtype == torch.float32
    assert gaussian_nll(x.double(), mean.double(), 0.7).dtype == torch.float64


@pytest.mark.parametrize("core_weights", ["shared", "per_step"])
def test_bf16_autocast_elbo_close_to_fp32(core_weights):
    torch.manual_seed(0)
    model = GQN(tiny_config(core_weights=core_weights))
    batch = random_batch()
    fp32 = elbo_terms(model, batch, AccelConfig(precision="fp32"))
    bf16 = elbo_terms(model, batch, AccelConfig(precision="bf16"))
    assert bf16.nll.dtype == torch.float32 and bf16.kl_per_step.dtype == torch.float32
    # bf16 keeps ~3 significant digits in the convolutions; the loss arithmetic is fp32.
    torch.testing.assert_close(bf16.nll, fp32.nll, rtol=2e-3, atol=0.0)
    torch.testing.assert_close(bf16.kl, fp32.kl, rtol=5e-2, atol=5e-2)
    bf16.loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())


def test_channels_last_equals_contiguous():
    torch.manual_seed(0)
    model = GQN(tiny_config())
    batch = random_batch()
    reference = elbo_terms(model, batch, AccelConfig(precision="fp32"))
    accel = AccelConfig(precision="fp32", channels_last=True)
    fast = prepare_model(copy.deepcopy(model), accel, CPU)
    assert fast.draw.generator_steps[0].core.gates.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    batch = prepare_batch(batch, accel, CPU)
    assert batch.target_images.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    terms = elbo_terms(fast, batch, accel)
    torch.testing.assert_close(terms.nll, reference.nll, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(terms.kl_per_step, reference.kl_per_step, rtol=1e-4, atol=1e-4)


def test_prepare_model_without_switches_returns_the_model():
    model = GQN(tiny_config())
    assert prepare_model(model, AccelConfig(), CPU) is model


def no_cxx_compiler(error: BaseException | None) -> bool:
    """Whether ``error`` or an exception it wraps is inductor's "no working C++ compiler"."""
    from torch._inductor.exc import InvalidCxxCompiler

    while error is not None:
        if isinstance(error, InvalidCxxCompiler):
            return True
        error = getattr(error, "inner_exception", None) or error.__cause__ or error.__context__
    return False


def test_compile_equals_eager():
    torch.manual_seed(0)
    model = GQN(tiny_config(num_steps=2, r_channels=8, hidden_channels=8, canvas_channels=8))
    batch = random_batch(b=1, k=1)
    eager = elbo_terms(model, batch, AccelConfig(precision="fp32"))
    compiled = prepare_model(model, AccelConfig(precision="fp32", compile=True), CPU)
    try:
        # fallback_random: the posterior noise from torch's generator, not inductor's own.
        with torch._inductor.config.patch(fallback_random=True):
            terms = elbo_terms(compiled, batch, AccelConfig(precision="fp32"))
    except Exception as error:
        if not no_cxx_compiler(error):
            raise
        pytest.skip(f"torch.compile needs a working C++ compiler on this machine: {error}")
    # Inductor fuses and reorders the fp32 reductions: equal to fp32 rounding of a 3072-term sum.
    torch.testing.assert_close(terms.nll, eager.nll, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(terms.kl_per_step, eager.kl_per_step, rtol=1e-4, atol=1e-4)


def test_full_fp32_turns_tf32_off_on_cuda_only_and_restores_it():
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    saved = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = True
        with full_fp32("cpu"):
            assert all(f.allow_tf32 for f in flags)  # nothing to do off CUDA
        with full_fp32(torch.device("cuda")):  # the flags exist without a GPU
            assert not any(f.allow_tf32 for f in flags)
        assert all(f.allow_tf32 for f in flags)
        with pytest.raises(RuntimeError), full_fp32("cuda"):
            raise RuntimeError("an evaluation that fails")
        assert all(f.allow_tf32 for f in flags)  # restored after the error too
    finally:
        for f, value in zip(flags, saved, strict=True):
            f.allow_tf32 = value


@pytest.mark.parametrize(
    "flags, amx", [({"avx512_bf16", "amx_tile"}, True), ({"avx512_bf16"}, False)]
)
def test_cpu_has_amx_reads_the_amx_tile_flag(monkeypatch, flags, amx):
    monkeypatch.setattr(accel_module, "cpu_model_and_flags", lambda: ("cpu", frozenset(flags)))
    assert accel_module.cpu_has_amx() is amx
