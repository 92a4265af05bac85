"""Speed switches for training and sampling: bf16 autocast, channels-last, ``torch.compile``.

None of them changes the model's mathematics: bf16 autocast runs the convolutions in bfloat16
with fp32 accumulation while the loss terms stay in fp32 (:mod:`gqn.losses` casts its inputs),
channels-last only changes the memory layout, and ``torch.compile`` fuses the same operations.
Measured speed-ups and the chosen defaults are in ``docs/performance.md``.

    accel = resolve(AccelConfig(), device)
    model = prepare_model(model, accel, device)
    with autocast(accel, device):
        loss = model(batch, sigma).loss      # forward (= elbo): what torch.compile compiles
    loss.backward()
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from gqn.batch import QueryBatch
from gqn.device import cpu_model_and_flags

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]


@dataclass
class AccelConfig:
    """Speed switches; none changes the mathematics.

    ``precision``: ``"auto"`` picks bf16 on CUDA and on CPUs with native bf16 but no AMX, else
    fp32;
    ``"fp32"``; ``"bf16"`` (autocast: matmuls and convolutions in bfloat16; parameters,
    optimiser state and losses in fp32). ``channels_last``: NHWC memory layout for the model and
    its 4-d inputs. ``compile``: ``torch.compile`` the model with ``compile_mode``
    (``"default"``, ``"max-autotune-no-cudagraphs"``, ...)."""

    precision: Precision = "auto"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (AVX-512 BF16 / AMX)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX tiles (the ``amx_tile`` flag). With torch 2.13.0 the AMX bf16
    path gives gradients far from fp32's (cosine 0.47-0.84 for the GQN's representation and
    core, tests/test_fast_paths.py; above 0.99 with AMX disabled by
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16), so ``"auto"`` does not pick bf16 there."""
    return "amx_tile" in cpu_model_and_flags()[1]


def resolve(accel: AccelConfig, device: torch.device | str) -> AccelConfig:
    """A copy of ``accel`` with ``precision="auto"`` replaced by the concrete choice for
    ``device``: bf16 on a CUDA GPU that supports it and on a CPU with native bf16 (measured:
    paper64 training 3.7x the reference path and 2.1x fp32, loss curves unchanged; see
    docs/performance.md), fp32 otherwise, and fp32 on a CPU with AMX (:func:`cpu_has_amx`)."""
    device = torch.device(device)
    if accel.precision != "auto":
        return replace(accel)
    if device.type == "cuda":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    else:
        bf16 = device.type == "cpu" and cpu_has_native_bf16() and not cpu_has_amx()
    return replace(accel, precision="bf16" if bf16 else "fp32")


def prepare_model(model: nn.Module, accel: AccelConfig, device: torch.device | str) -> nn.Module:
    """Move ``model`` to ``device`` (in place), convert it to channels-last if asked, and return
    it, wrapped by ``torch.compile`` if asked. ``torch.compile`` compiles ``forward`` only: call
    ``model(batch, sigma)`` (= ``elbo``), not ``model.elbo``, to run compiled code. The returned
    module shares the parameters of ``model``: build the optimiser from either, and save
    ``model.state_dict()`` (the compiled wrapper prefixes its keys with ``_orig_mod.``)."""
    model = model.to(device)
    if accel.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if accel.compile:
        logger.info("torch.compile(mode=%r) on %s", accel.compile_mode, torch.device(device))
        return torch.compile(model, mode=accel.compile_mode)
    return model


def autocast(accel: AccelConfig, device: torch.device | str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 when ``accel`` resolves to bf16 on ``device``, else a
    no-op context."""
    device = torch.device(device)
    if resolve(accel, device).precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def full_fp32(device: torch.device | str) -> Iterator[None]:
    """Inside, CUDA matmuls and convolutions run in full fp32 (TF32 off; PyTorch lets cuDNN
    convolutions use TF32 by default), then the previous settings return. For evaluation: the
    same arithmetic on every device. A no-op off CUDA."""
    if torch.device(device).type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def to_memory_format(tensor: torch.Tensor, accel: AccelConfig) -> torch.Tensor:
    """A 4-d tensor in channels-last layout when ``accel.channels_last``; anything else as is."""
    if accel.channels_last and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def prepare_batch(
    batch: QueryBatch, accel: AccelConfig, device: torch.device | str, non_blocking: bool = False
) -> QueryBatch:
    """``batch`` on ``device`` with each of its target images in the model's memory layout
    (models flatten the (b, n) targets to 4-d, and that view keeps the layout; the context images
    are flattened to 4-d inside the representation network)."""
    batch = batch.to(device, non_blocking=non_blocking)
    targets = batch.target_images
    batch.target_images = to_memory_format(targets.flatten(0, 1), accel).unflatten(
        0, targets.shape[:2]
    )
    return batch
