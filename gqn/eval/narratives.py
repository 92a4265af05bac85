"""Reading a narrative's facts back: from a store's manifest, or from (predicted) frames.

Stores hold no per-scene metadata, but a narrative scene is a pure function of the family, its
parameters, the seed and the scene index, all in the manifest: :func:`story_of` recomputes the
exact :class:`~gqn.data.scenes.Story` of a stored scene, ground truth included. To measure
whether *sampled* frames tell one consistent story (seed 003 §4.1), the functions below read a
story's facts from any video ``(T, S, S, 3)`` — uint8 or floats in ``[0, 1]``, at any size —
given the scene's story for the shapes' places and colours:

- :func:`visit_order`: which shape the traveling salesman touches at each arrival frame;
- :func:`reaction_colors`: the palette colour of the color-reaction's shape 1 in every frame.
"""

from __future__ import annotations

import numpy as np
import torch

from gqn.data.render.shapes2d import PALETTE, coverage
from gqn.data.scenes import Narrative, Story, make_family
from gqn.data.store import SceneStore

MATCH_DISTANCE = 0.3  # RGB distance under which a pixel counts as the tracked colour (< half of
# the palette's least pairwise distance, 0.47)


def story_of(store: SceneStore, index: int) -> Story:
    """The story of scene ``index`` of a store written by ``gqn data generate`` of a narrative."""
    source = store.manifest.source
    family = source.get("family")
    fam = make_family(family, **source["params"]) if source.get("kind") == "procedural" else None
    if not isinstance(fam, Narrative):
        raise ValueError(
            f"{store.root}: scenes of {family or source.get('kind')!r} are not a narrative; "
            "generate one with `gqn data generate traveling-salesman|color-reaction|dag-chase`"
        )
    return fam.story(int(source["seed"]), index)


def _frames(video: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(T, S, S, 3)`` floats in [0, 1] from uint8 or float frames."""
    v = torch.as_tensor(np.asarray(video))
    if v.ndim != 4 or v.shape[-1] != 3 or v.shape[1] != v.shape[2]:
        raise ValueError(f"video must be (T, S, S, 3) frames, got shape {tuple(v.shape)}")
    return v.float() / 255.0 if v.dtype == torch.uint8 else v.float()


def nearest_color(rgb: torch.Tensor) -> torch.Tensor:
    """Palette indices ``(...)`` of the palette colours nearest to ``rgb (..., 3)``."""
    return torch.cdist(rgb.reshape(-1, 3), PALETTE).argmin(-1).reshape(rgb.shape[:-1])


def shape_colors(video, story: Story, shape: int) -> torch.Tensor:
    """Colour ``(T, 3)`` of ``shape`` in every frame: the least-squares ``rgb`` with
    ``pixel = coverage * rgb`` over the pixels the story's shape covers (edges included)."""
    v = _frames(video)
    t, s = v.shape[:2]
    if t != len(story.center):
        raise ValueError(f"video has {t} frames but the story {len(story.center)}")
    cov = coverage(
        torch.full((t,), int(story.kind[shape])),
        torch.as_tensor(story.center[:, shape], dtype=torch.float32),
        torch.full((t,), float(story.radius[shape])),
        s,
    )[..., None]  # (T, S, S, 1)
    return (cov * v).sum((1, 2)) / (cov * cov).sum((1, 2)).clamp_min(1e-6)


def reaction_colors(video, story: Story) -> list[int]:
    """Palette index of color-reaction's shape 1 in each frame; the truth is ``color_before``
    before ``change_frame`` and ``reaction_color`` from it on."""
    return nearest_color(shape_colors(video, story, 1)).tolist()


def track(video, color: int) -> torch.Tensor:
    """Centre ``(T, 2)`` in frame units of the pixels of palette colour ``color`` in each frame:
    their centroid, each pixel weighted by ``1 - distance / MATCH_DISTANCE`` (NaN if none)."""
    v = _frames(video)
    s = v.shape[1]
    w = (1 - (v - PALETTE[color]).norm(dim=-1) / MATCH_DISTANCE).clamp_min(0)  # (T, S, S)
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    total = w.sum((1, 2))
    x = (w * grid[None, None, :]).sum((1, 2)) / total
    y = (w * grid[None, :, None]).sum((1, 2)) / total
    return torch.stack([x, y], -1)


def visit_order(video, story: Story) -> list[int]:
    """The shape the traveling salesman (shape 0, tracked by its colour) is nearest to at each
    of the story's ``arrival_frames``, by the gap between their outlines; the truth is the
    story's ``visit_order`` (a consistent video gives a permutation of the shapes 1..N-1);
    -1 where no pixel has the salesman's colour."""
    at = story.truth["arrival_frames"]
    where = track(video, int(story.color[0, 0]))[at].numpy()  # (K, 2)
    others = story.center[0, 1:]  # the visited shapes never move
    gaps = np.linalg.norm(where[:, None] - others[None], axis=-1) - story.radius[None, 1:]
    nearest = 1 + np.nan_to_num(gaps, nan=np.inf).argmin(-1)
    return np.where(np.isnan(where[:, 0]), -1, nearest).tolist()
