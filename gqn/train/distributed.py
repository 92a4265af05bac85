"""Distributed set-up for ``torchrun``: process group, rank, device, small collectives.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`init` starts a process group
(NCCL on CUDA, gloo on CPU); otherwise everything degrades to a single process with no
collectives.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gqn.device import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``device`` is the one it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(requested_device: str) -> DistInfo:
    """Join the ``torchrun`` process group if there is one, and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        log.info("rank %d/%d on %s (%s)", rank, world, device, dist.get_backend())
    return DistInfo(rank, world, local, device)


def shutdown(info: DistInfo) -> None:
    """Leave the process group. Call it after the DistributedDataParallel wrapper is freed: a
    process group still referenced at interpreter exit has its gloo threads destroyed during
    finalization, which aborts the process (SIGABRT, "terminate called without an active
    exception") after the work is done."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_max(info: DistInfo, flags: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of a small float tensor over ranks (itself when single-process)."""
    if info.enabled:
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return flags
