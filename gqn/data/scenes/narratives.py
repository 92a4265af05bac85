"""The three narratives of seed 003 (§4.1, figures 3-4 and the project website).

Shape 0 is the actor of each story; frames are indexed from 0 here (the paper counts from 1).

- ``traveling-salesman``: shape 0 visits the other ``N - 1`` shapes one after another in a random
  order, arriving (touching the visited shape) at frames ``a_k = round(k (T - 1) / (N - 1))`` and
  moving in a straight line between visits; the defaults (T = 21, N = 5) give visits at frames
  5, 10, 15, 20 — F6, F11, F16, F21 of figure 3, whose context F1, F6 shows the first visit.
- ``color-reaction``: shape 0 moves in a straight line (at least ``MIN_TRAVEL``) to shape 1,
  touching it at frame
  ``c - 1`` with ``c = T // 2``; shape 1 takes a new colour (random, unlike every shape's) at
  frame ``c`` and keeps it. The defaults (T = 12) are figure 4's: moves over frames 1-6, new
  colour over 7-12.
- ``dag-chase``: a random directed acyclic graph of chases. A random order of the N shapes; the
  first (the leader) has no target and drifts at ``leader_speed`` in a random direction,
  bouncing off the frame's edges; shape ``order[i]`` (i >= 1) chases a target drawn uniformly
  from ``order[0 .. i-1]``, so every edge points to an earlier shape (acyclic) and every shape
  moves. Each frame a chaser steps ``chase_speed`` straight towards where its target was in the
  previous frame, stopping when they touch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gqn.data.scenes.base import help_field
from gqn.data.scenes.story import Narrative, Story, along, touch_point

FIRST_VISIT_BY = 5  # frame index (F6) by which the salesman reaches its first shape
STOP_CLEARANCE = 0.05  # least gap between the salesman's stops and the shapes it is not visiting
TURNS = np.radians(15.0) * np.array([0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6])
MIN_TRAVEL = 0.25  # least distance the color-reaction mover travels, frame widths


@dataclass
class TravelingSalesman(Narrative):
    """Shape 0 visits every other shape once, in a random order (truth: ``visit_order``)."""

    name = "traveling-salesman"

    frames: int = help_field(21, "frames per video (5 per visit by default, as in figure 3)")
    shapes: int = help_field(5, "shapes per video: the salesman and the shapes it visits")

    def arrivals(self) -> list[int]:
        """Frame of each visit's arrival, after frame 0 for the start: ``(N,)`` increasing."""
        legs = self.shapes - 1
        return [math.floor(k * (self.frames - 1) / legs + 0.5) for k in range(legs + 1)]

    def validate(self) -> None:
        super().validate()
        if self.frames < self.shapes:
            raise ValueError(
                f"{self.name}: frames must be >= shapes ({self.shapes}) for one frame per visit, "
                f"got {self.frames}"
            )
        if self.arrivals()[1] > FIRST_VISIT_BY:
            most = math.ceil((self.shapes - 1) * (FIRST_VISIT_BY + 0.5))  # a_1 rounds to <= 5
            raise ValueError(
                f"{self.name}: frames must be <= {most} for {self.shapes} shapes, so the first "
                f"visit falls in the first {FIRST_VISIT_BY + 1} frames; got {self.frames}"
            )

    def waypoints(
        self, centers: np.ndarray, radius: np.ndarray, order: np.ndarray
    ) -> np.ndarray | None:
        """The salesman's start and its stop at each visited shape ``(N, 2)``, or None if some
        shape has no clear stop. The stop touches the visited shape on the side the salesman
        comes from, turned by the least multiple of 15 degrees that keeps it inside the frame and
        ``STOP_CLEARANCE`` from every other shape."""
        points = [centers[0]]
        r0, others = radius[0], np.arange(self.shapes)
        for k in order:
            away = points[-1] - centers[k]
            angle = math.atan2(away[1], away[0]) + TURNS
            stops = centers[k] + (r0 + radius[k]) * np.stack([np.cos(angle), np.sin(angle)], -1)
            gaps = np.linalg.norm(stops[:, None] - centers[None], axis=-1) - radius - r0
            clear = (gaps >= STOP_CLEARANCE) | (others == 0) | (others == k)
            ok = clear.all(-1) & ((stops >= r0) & (stops <= 1 - r0)).all(-1)
            if not ok.any():
                return None
            points.append(stops[ok.argmax()])
        return np.stack(points)

    def tell(self, rng: np.random.Generator) -> Story:
        kind, size, radius, colors = self.attributes(rng)
        order = 1 + rng.permutation(self.shapes - 1)
        centers = self.place(rng, radius, lambda c: self.waypoints(c, radius, order) is not None)
        arrivals = self.arrivals()
        center = np.repeat(centers[None], self.frames, axis=0)
        center[:, 0] = along(self.waypoints(centers, radius, order), arrivals, self.frames)
        truth = {"visit_order": order.tolist(), "arrival_frames": arrivals[1:]}
        return Story(kind, size, radius, np.tile(colors, (self.frames, 1)), center, truth)


@dataclass
class ColorReaction(Narrative):
    """Shape 0 moves to shape 1, which then changes colour (truth: ``reaction_color``)."""

    name = "color-reaction"
    extra_colors = 1
    min_frames = 4

    frames: int = help_field(12, "frames per video: the move fills the first half (figure 4)")
    shapes: int = help_field(2, "shapes per video: the mover, the reactor and still distractors")

    def change_frame(self) -> int:
        """The first frame showing shape 1's new colour, ``T // 2``."""
        return self.frames // 2

    def tell(self, rng: np.random.Generator) -> Story:
        kind, size, radius, colors = self.attributes(rng)
        centers = self.place(
            rng,
            radius,
            lambda p: np.linalg.norm(p[0] - p[1]) >= radius[0] + radius[1] + MIN_TRAVEL,
        )
        c = self.change_frame()
        stop = touch_point(centers[0], centers[1], radius[0] + radius[1])
        center = np.repeat(centers[None], self.frames, axis=0)
        center[:, 0] = along(np.stack([centers[0], stop]), [0, c - 1], self.frames)
        color = np.tile(colors[: self.shapes], (self.frames, 1))
        color[c:, 1] = colors[-1]
        truth = {
            "change_frame": c,
            "color_before": int(colors[1]),
            "reaction_color": int(colors[-1]),
        }
        return Story(kind, size, radius, color, center, truth)


@dataclass
class DagChase(Narrative):
    """Every shape moves: a leader drifts, the others chase along a random DAG (truth: ``target``
    of each shape, -1 for the leader, and the ``order``)."""

    name = "dag-chase"

    frames: int = help_field(12, "frames per video")
    shapes: int = help_field(4, "shapes per video, all moving")
    leader_speed: float = help_field(0.05, "the leader's speed, frame widths per frame")
    chase_speed: float = help_field(0.07, "a chaser's greatest step, frame widths per frame")

    def validate(self) -> None:
        super().validate()
        for name in ("leader_speed", "chase_speed"):
            if not 0 < getattr(self, name) <= 0.25:
                raise ValueError(
                    f"{self.name}: {name} must be in (0, 0.25], got {getattr(self, name)}"
                )

    def drift(self, start: np.ndarray, r: float, angle: float) -> np.ndarray:
        """The leader's centres ``(T, 2)``: constant speed from ``start``, reflected at the
        frame's edges (kept ``r`` inside)."""
        v = self.leader_speed * np.array([math.cos(angle), math.sin(angle)])
        free = 1 - 2 * r
        travel = (start - r)[None] + np.arange(self.frames)[:, None] * v[None]
        folded = np.mod(travel, 2 * free)  # a point bouncing in [0, free] is a sawtooth fold
        return r + np.minimum(folded, 2 * free - folded)

    def tell(self, rng: np.random.Generator) -> Story:
        kind, size, radius, colors = self.attributes(rng)
        centers = self.place(rng, radius)
        order = rng.permutation(self.shapes)
        target = np.full(self.shapes, -1)
        for i in range(1, self.shapes):
            target[order[i]] = order[rng.integers(i)]
        leader = order[0]
        center = np.repeat(centers[None], self.frames, axis=0)
        center[:, leader] = self.drift(centers[leader], radius[leader], rng.uniform(0, 2 * math.pi))
        chasers = order[1:]
        touch = radius[chasers] + radius[target[chasers]]
        for t in range(1, self.frames):
            gap = center[t - 1, target[chasers]] - center[t - 1, chasers]
            dist = np.linalg.norm(gap, axis=-1)
            step = np.minimum(self.chase_speed, np.maximum(dist - touch, 0.0))
            center[t, chasers] = (
                center[t - 1, chasers] + (step / np.maximum(dist, 1e-9))[:, None] * gap
            )
        truth = {"target": target.tolist(), "order": order.tolist()}
        return Story(kind, size, radius, np.tile(colors, (self.frames, 1)), center, truth)
