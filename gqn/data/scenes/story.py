"""Narratives (seed 003 §4.1): videos of 2-D shapes acting out a story, viewed by timestamp.

A :class:`Narrative` family draws each scene as a :class:`Story` — N shapes, each with a random
shape, size and colour (12 colours x 4 sizes x 4 shapes, colours distinct within a scene) at
random non-overlapping positions, their centres and colours in each of T frames, and the story's
ground truth — and paints the frames with :mod:`gqn.data.render.shapes2d`. The viewpoint of
frame ``i`` is its timestamp ``t_i = i / (T - 1)`` in ``[0, 1]`` (kind ``time``; the encoder's
default period is 1). A story is a pure function of (family, parameters, seed, scene index), so
its ground truth is never stored: :meth:`Narrative.story` recomputes it from the store's manifest.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from gqn.data.render.shapes2d import PALETTE, SHAPES, draw_shapes
from gqn.data.scenes.base import SceneFamily, help_field, scene_rng

GAP = 0.03  # least clearance between shapes at their start, frame widths (1 px at 32 x 32)
TRIES = 1000  # whole layouts tried before giving up
CANDIDATES = 64  # random places tried per shape in one layout
SIZES = (0.07, 0.09, 0.11, 0.13)


@dataclass
class Story:
    """One scene of a narrative: ``N`` shapes over ``T`` frames and the story's ground truth.

    ``kind (N,)`` index into SHAPES, ``size (N,)`` index into the family's ``sizes``, ``radius
    (N,)`` frame widths, ``color (T, N)`` palette indices per frame, ``center (T, N, 2)`` frame
    units (x right, y down), ``truth``: the narrative's facts (see each family).
    """

    kind: np.ndarray
    size: np.ndarray
    radius: np.ndarray
    color: np.ndarray
    center: np.ndarray
    truth: dict[str, Any]


def touch_point(start: np.ndarray, target: np.ndarray, distance: float) -> np.ndarray:
    """The point ``distance`` from ``target`` on the way from ``start``: where a shape coming from
    ``start`` touches the target when ``distance`` is the sum of their radii."""
    away = start - target
    return target + distance * away / max(float(np.linalg.norm(away)), 1e-9)


def along(waypoints: np.ndarray, arrivals: Sequence[int], frames: int) -> np.ndarray:
    """Centres ``(frames, 2)`` moving linearly between ``waypoints (K, 2)``, reaching waypoint k at
    frame ``arrivals[k]`` (increasing) and resting at the last one afterwards."""
    t = np.arange(frames)
    return np.stack([np.interp(t, arrivals, waypoints[:, d]) for d in range(2)], axis=-1)


@dataclass
class Narrative(SceneFamily):
    """Base of the narratives families: parameters, shape attributes, layout, drawing."""

    viewpoint: ClassVar[str] = "time"
    # palette colours a story needs beyond one per shape (the reaction colour)
    extra_colors: ClassVar[int] = 0
    min_shapes: ClassVar[int] = 2
    min_frames: ClassVar[int] = 2

    image_size: int = help_field(
        32, "frame height = width in pixels (8, 16, 32, 64, 128, 256; 32 = the CPU size)"
    )
    frames: int = help_field(12, "frames per video (views per scene)")
    shapes: int = help_field(2, "shapes per video")
    sizes: tuple[float, ...] = help_field(
        SIZES, "shape radii to draw from, in frame widths (comma-separated)"
    )

    @property
    def views_per_scene(self) -> int:
        return self.frames

    def validate(self) -> None:
        self.sizes = tuple(float(s) for s in self.sizes)  # a YAML/JSON list -> the tuple
        name, colors = self.name, len(PALETTE)
        if self.frames < self.min_frames:
            raise ValueError(f"{name}: frames must be >= {self.min_frames}, got {self.frames}")
        if self.shapes < self.min_shapes:
            raise ValueError(f"{name}: shapes must be >= {self.min_shapes}, got {self.shapes}")
        if self.shapes + self.extra_colors > colors:
            raise ValueError(
                f"{name}: shapes={self.shapes} needs {self.shapes + self.extra_colors} distinct "
                f"colours but the palette has {colors}; use shapes <= {colors - self.extra_colors}"
            )
        if not self.sizes or min(self.sizes) <= 0 or max(self.sizes) > 0.25:
            raise ValueError(
                f"{name}: sizes must be radii in (0, 0.25] frame widths, got {self.sizes}"
            )
        if min(self.sizes) * self.image_size < 1:
            raise ValueError(
                f"{name}: sizes: radius {min(self.sizes)} is under 1 pixel at image_size "
                f"{self.image_size}; use larger sizes or a larger image_size"
            )
        if self.shapes * (2 * max(self.sizes) + GAP) ** 2 > 0.45:
            raise ValueError(
                f"{name}: sizes: {self.shapes} shapes of radius up to {max(self.sizes)} do not fit "
                f"the frame; use smaller sizes or fewer shapes"
            )

    def timestamps(self) -> np.ndarray:
        """Raw viewpoints ``(T,)``: frame i at ``i / (T - 1)``."""
        return np.arange(self.frames, dtype=np.float32) / (self.frames - 1)

    def attributes(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``kind (N,)``, ``size (N,)``, ``radius (N,)`` and ``N + extra_colors`` distinct palette
        indices for a new story."""
        n = self.shapes
        kind = rng.integers(len(SHAPES), size=n)
        size = rng.integers(len(self.sizes), size=n)
        colors = rng.choice(len(PALETTE), size=n + self.extra_colors, replace=False)
        return kind, size, np.asarray(self.sizes)[size], colors

    def place(
        self,
        rng: np.random.Generator,
        radius: np.ndarray,
        accept: Callable[[np.ndarray], bool] = lambda centers: True,
    ) -> np.ndarray:
        """Centres ``(N, 2)`` inside the frame, every pair ``GAP`` apart, until ``accept(centers)``:
        each shape takes the first of ``CANDIDATES`` random places clear of the shapes before it
        (if none is, the layout starts again)."""
        n = len(radius)
        for _ in range(TRIES):
            centers = np.empty((n, 2))
            for i, r in enumerate(radius):
                candidates = rng.uniform(r, 1 - r, size=(CANDIDATES, 2))
                gaps = np.linalg.norm(candidates[:, None] - centers[None, :i], axis=-1)
                clear = (gaps >= r + radius[:i] + GAP).all(-1)
                if not clear.any():
                    break
                centers[i] = candidates[clear.argmax()]
            else:
                if accept(centers):
                    return centers
        raise ValueError(
            f"{self.name}: could not lay out {self.shapes} shapes of sizes {self.sizes}; "
            "use smaller sizes or fewer shapes"
        )

    @abc.abstractmethod
    def tell(self, rng: np.random.Generator) -> Story:
        """Draw one story from its own generator."""

    def story(self, seed: int, index: int) -> Story:
        """Scene ``index`` of dataset ``seed`` (the same story its frames show)."""
        return self.tell(scene_rng(self.name, int(seed), int(index)))

    def render_scenes(
        self, seed: int, indices: Sequence[int], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(n, T, S, S, 3)`` uint8 and raw viewpoints ``(n, T, 5)`` float32 (timestamp in
        column 0, zeros after) of scenes ``indices``."""
        stories = [self.story(seed, i) for i in indices]
        n, t, s = len(stories), self.frames, self.image_size
        poses = np.zeros((n, t, 5), np.float32)
        poses[:, :, 0] = self.timestamps()
        if not stories:
            return np.zeros((0, t, s, s, 3), np.uint8), poses

        def stack(field: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([getattr(x, field) for x in stories]), device=device)

        frames = draw_shapes(
            stack("kind"),
            stack("center").float(),
            stack("radius").float(),
            PALETTE.to(device)[stack("color")],
            s,
        )
        return frames.cpu().numpy(), poses
