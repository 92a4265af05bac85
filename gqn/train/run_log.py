"""Run observability: windowed metric sums, the JSON-lines log, TensorBoard, image grids.

:class:`MetricWindow` sums 0-d tensors on the device (no host sync); :meth:`MetricWindow.means`
is the one sync per log step. :class:`RunLog` (rank 0 only) appends to
``<run_dir>/metrics.jsonl`` and mirrors scalars and images to TensorBoard (``<run_dir>/tb``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gqn.batch import QueryBatch
from gqn.models.base import SceneModel
from gqn.viz.contact_sheet import contact_sheet

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
IMAGE_DIR = "images"
PREVIEW_SEED = 1234


class MetricWindow:
    """Sums of named 0-d tensors over the steps since the last log."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.skipped = 0
        self.started = time.perf_counter()

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def means(self) -> dict[str, float]:
        """Window means as floats (one device -> host copy)."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = (torch.stack([self.sums[k] for k in keys]) / self.count).tolist()
        return dict(zip(keys, values, strict=True))

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop lines logged after ``step`` (written after the checkpoint a run resumes from)."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write
    path.write_text("".join(line + "\n" for line in kept))


class RunLog:
    """Scalars to ``metrics.jsonl`` (+ TensorBoard), image grids to PNG (+ TensorBoard)."""

    def __init__(self, run_dir: Path, start_step: int, tensorboard: bool = True):
        """Continue the logs of a run that (re)starts at ``start_step`` (0: a fresh run): what
        an earlier attempt logged after that step is dropped from ``metrics.jsonl``
        (:func:`truncate_metrics`) and hidden in TensorBoard (``purge_step``)."""
        self.run_dir = run_dir
        truncate_metrics(run_dir, start_step)
        self.file = open(run_dir / METRICS_FILE, "a")  # noqa: SIM115 (closed in close())
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        record = {"step": step, "time": time.time(), **values}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, int | float):
                    self.writer.add_scalar(k, v, step)

    def image(self, step: int, name: str, image: np.ndarray) -> Path:
        """Save uint8 ``(H, W, 3)`` as ``images/<name>_<step>.png`` and to TensorBoard."""
        from PIL import Image

        folder = self.run_dir / IMAGE_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}_{step:08d}.png"
        Image.fromarray(image).save(path)
        if self.writer is not None:
            self.writer.add_image(name, image, step, dataformats="HWC")
        return path

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


@torch.no_grad()
def preview_images(model: SceneModel, batch: QueryBatch) -> tuple[np.ndarray, torch.Tensor]:
    """Grid rows ground truth | posterior reconstruction | prior sample of the first target of
    each scene of ``batch``.

    Returns the grid as uint8 ``(H', W', 3)`` and the prior samples ``(b, c, h, w)``. Noise comes
    from a fixed seed in a forked RNG, so the training RNG stream is untouched.
    """
    was_training = model.training
    model.eval()
    device = batch.target_images.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(PREVIEW_SEED)
        recon = model.reconstruct(batch)[:, 0]
        prior = model.sample(
            batch.context_images,
            batch.context_viewpoints,
            batch.target_viewpoints[:, :1],
            batch.context_mask,
        )[:, 0, 0]
    model.train(was_training)
    rows = torch.stack([batch.target_images[:, 0], recon, prior])  # (3, b, c, h, w)
    frames = (rows.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)
    return np.asarray(contact_sheet(frames.cpu().numpy())), prior
