"""The device a run or an evaluation uses, and what the CPU offers."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; ``"cuda"`` fails clearly without a GPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device=cuda was requested but no CUDA GPU is available; use device=cpu or device=auto"
        )
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


@functools.cache
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags (``avx2``, ``avx512_bf16``, ``amx_tile``, ...)
    from Linux's /proc/cpuinfo; ("", empty) where that file is absent."""
    model, flags = "", frozenset()
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    return model, flags
