"""``gqn sample`` for a multi-scale checkpoint: the per-layer figures (thesis figs 5.10-5.15)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from gqn.batch import QueryBatch
from gqn.eval.evaluate import load_scenes
from gqn.viz.layers import layer_figure

LAYER_FILES = {"prior": "layers_prior.png", "reconstruction": "layers_reconstruction.png"}
RANGES_FILE = "layers.json"


@torch.no_grad()
def write_layer_figures(
    model,
    dataset,
    out: str | os.PathLike,
    num_scenes: int = 6,
    context: int = 3,
    seed: int = 0,
    scale: int = 2,
) -> list[Path]:
    """For the first ``num_scenes`` scenes of ``dataset`` (one query view each, ``context``
    views, the views of ``gqn eval``'s protocol), write the per-layer figure of one prior sample
    and of the posterior reconstruction, and each row's [min, max] (``layers.json``). ``model``
    has ``layer_images`` (:class:`gqn.models.multiscale.MultiScaleGQN`)."""
    device = next(model.parameters()).device
    model.eval()
    images, viewpoints = load_scenes(dataset, num_scenes, seed)
    k = min(context, images.shape[1] - 1)
    x, v = images.to(device), viewpoints.to(device)
    batch = QueryBatch.full_context(x[:, 1 : k + 1], v[:, 1 : k + 1], x[:, :1], v[:, :1])
    g = torch.Generator(device=device).manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths, ranges = [], {}
    for kind, name in LAYER_FILES.items():
        rows = [row[:, 0] for row in model.layer_images(batch, kind == "reconstruction", g)]
        figure, ranges[kind] = layer_figure(batch.target_images[:, 0], rows, scale)
        figure.save(out / name)
        paths.append(out / name)
    (out / RANGES_FILE).write_text(json.dumps({"context": k, "rows_min_max": ranges}, indent=2))
    return [*paths, out / RANGES_FILE]
