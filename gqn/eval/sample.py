"""``gqn sample``: render query views of one scene as a grid PNG and an orbit GIF."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from gqn.models.base import SceneModel
from gqn.viewpoint import pose_to_viewpoint
from gqn.viz.grids import sample_grid
from gqn.viz.orbit import orbit_poses, render_orbit, save_gif

log = logging.getLogger(__name__)

GRID_FILE = "samples.png"
ORBIT_FILE = "orbit.gif"


@torch.no_grad()
def sample_scene(
    model: SceneModel,
    images: torch.Tensor,
    poses: torch.Tensor,
    out: str | os.PathLike,
    *,
    context: int | None = None,
    num_samples: int = 4,
    num_queries: int = 4,
    orbit_frames: int = 36,
    seed: int = 0,
    scale: int = 2,
) -> dict[str, Path]:
    """Write ``samples.png`` and ``orbit.gif`` for a scene of n views (n, 3, s, s), poses (n, 5).

    The first ``context`` views (default: all but ``num_queries``, at least 1) are the context.
    Queries are the next ``num_queries`` views, shown with their ground truth; if no views are
    left, ``num_queries`` orbit poses (no ground truth). Returns the paths written.
    """
    n = images.shape[0]
    k = max(1, n - num_queries) if context is None else context
    if not 1 <= k <= n:
        raise ValueError(f"context must be in 1..{n} for a scene of {n} views, got {k}")
    if num_samples < 1 or num_queries < 1:
        raise ValueError("num_samples and num_queries must be >= 1")
    device = next(model.parameters()).device
    model.eval()
    ctx_x, ctx_p = images[:k], poses[:k]
    if k < n:
        query_p, truth = poses[k : k + num_queries], images[k : k + num_queries]
    else:
        query_p, truth = orbit_poses(ctx_p, num_queries), None
    r = model.represent(ctx_x[None].to(device), pose_to_viewpoint(ctx_p)[None].to(device))
    q = pose_to_viewpoint(query_p).to(device)
    g = torch.Generator(device=device).manual_seed(seed)
    samples = model.generate(r, q[None], num_samples, g)[0].transpose(0, 1).cpu()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid = out / GRID_FILE
    sample_grid(ctx_x, samples, truth, scale=scale).save(grid)
    orbit = save_gif(render_orbit(model, ctx_x, ctx_p, orbit_frames, seed), out / ORBIT_FILE)
    log.info("wrote %s and %s (%d context views, %d queries)", grid, orbit, k, len(q))
    return {"grid": grid, "orbit": orbit}


@torch.no_grad()
def truth_posterior_prior(
    model: SceneModel, dataset, num_scenes: int, context: int, seed: int = 0
) -> list[torch.Tensor]:
    """Columns [ground truth, posterior reconstruction, prior sample], each (n, 3, s, s), for the
    first ``num_scenes`` scenes of ``dataset`` with ``context`` views (protocol of ``gqn eval``)."""
    from gqn.batch import QueryBatch
    from gqn.eval.evaluate import load_scenes

    device = next(model.parameters()).device
    images, viewpoints = load_scenes(dataset, num_scenes, seed)
    k = min(context, images.shape[1] - 1)
    x, v = images.to(device), viewpoints.to(device)
    batch = QueryBatch.full_context(x[:, 1 : k + 1], v[:, 1 : k + 1], x[:, :1], v[:, :1])
    g = torch.Generator(device=device).manual_seed(seed)
    prior = model.sample(
        batch.context_images, batch.context_viewpoints, batch.target_viewpoints, generator=g
    )[:, 0, 0]
    recon = model.reconstruct(batch)[:, 0]
    return [batch.target_images[:, 0].cpu(), recon.cpu(), prior.cpu()]
