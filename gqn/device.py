"""The device a run or an evaluation uses."""

from __future__ import annotations

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
