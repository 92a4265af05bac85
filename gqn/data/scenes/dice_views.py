"""Which faces of an MNIST die each view sees, and context/target splits of a scene's views.

Faces are numbered as the renderer's cube faces, in the die's own axes: 0 ``-x``, 1 ``+x``,
2 ``-y``, 3 ``+y`` (the four *sides*), 4 ``-z`` (the bottom, on the floor) and 5 ``+z`` (the top).

**Area.** The fraction of the image a face covers in a view: 0 unless its outward normal points
towards the camera (otherwise the cube itself hides it), else the projected area of its part
inside the camera's view frustum (the face's quadrilateral clipped to the near plane and the four
planes of the field of view). The room holds nothing else that could hide the die (its walls lie
beyond it, the camera inside the room), so this is exact: the fraction of pixel centres the face
covers, up to the pixels along its edges (the tests check it against rendered frames).

**Seen and hidden.** A view *sees* a face covering at least ``min_face_area`` of its image; a
face is *hidden* from a view when its area is 0 (no part of it in view). A view showing a sliver
(``0 < area < min_face_area``) neither sees nor hides it: it is never in the context of a split
that hides that face, nor one of its targets.

**Splits** (``SPLITS``) choose ``K`` context and ``N`` target views of one scene:
``random`` (any disjoint views) or ``hidden-face`` (a side face hidden from every context view —
so the context sees at most three sides — and seen by every target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gqn.data.render import camera_basis

SIDES = (0, 1, 2, 3)
SPLITS = ("random", "hidden-face")
NEAR = 1e-3  # near plane of the visibility test, world units in front of the camera
TRIES = 100  # random contexts tried for ``context_sides``


def _unit_faces() -> np.ndarray:
    """``(6, 4, 3)`` corners of the faces of ``[-1, 1]^3``, in order around each face."""
    faces = np.zeros((6, 4, 3))
    for axis in range(3):
        u, w = (axis + 1) % 3, (axis + 2) % 3
        for sign in (0, 1):
            for k, (a, b) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
                faces[2 * axis + sign, k, (axis, u, w)] = (2 * sign - 1, a, b)
    return faces


UNIT_FACES = _unit_faces()


def _clip(poly: list[np.ndarray], plane: np.ndarray) -> list[np.ndarray]:
    """The part of a convex polygon (camera-space points ``(3,)``) where
    ``plane[:3] . p + plane[3] >= 0`` (Sutherland-Hodgman, one plane)."""
    out = []
    for a, b in zip(poly, poly[1:] + poly[:1], strict=True):
        da, db = plane[:3] @ a + plane[3], plane[:3] @ b + plane[3]
        if da >= 0:
            out.append(a)
        if (da >= 0) != (db >= 0):
            out.append(a + (b - a) * (da / (da - db)))
    return out


def face_areas(
    center: np.ndarray, half: float, rotation: np.ndarray, poses: np.ndarray, fov_deg: float
) -> np.ndarray:
    """Fraction of the image ``(V, 6)`` each face of a cube covers in each view (0: back face).

    Args: cube centre ``(3,)``, half edge, object-to-world rotation ``(3, 3)``, raw poses
    ``(V, 5)`` (:mod:`gqn.viewpoint`), the camera's field of view across the (square) image.
    """
    s = math.tan(math.radians(fov_deg) / 2)
    corners = center + (half * UNIT_FACES) @ rotation.T  # (6, 4, 3) world
    normals = corners.mean(1) - center  # outward, (6, 3)
    planes = np.array(
        [[-1, 0, s, 0], [1, 0, s, 0], [0, -1, s, 0], [0, 1, s, 0], [0, 0, 1, -NEAR]], float
    )
    pose = torch.as_tensor(np.asarray(poses, np.float64))
    basis = camera_basis(pose[:, 3], pose[:, 4]).numpy()  # (V, 3, 3) rows right, up, forward
    areas = np.zeros((len(poses), 6))
    for v, (position, rows) in enumerate(zip(pose[:, :3].numpy(), basis, strict=True)):
        facing = ((position - corners.mean(1)) * normals).sum(-1) > 0
        for f in np.flatnonzero(facing):
            poly = list((corners[f] - position) @ rows.T)  # camera space (x right, y up, z fwd)
            for plane in planes:
                poly = _clip(poly, plane)
            if len(poly) < 3:
                continue
            xy = np.array([p[:2] / (p[2] * s) for p in poly])  # image square [-1, 1]^2
            x, y = xy[:, 0], xy[:, 1]
            areas[v, f] = abs(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / 8  # shoelace / 4
    return areas


@dataclass
class DiceFaces:
    """What the views of one scene see of its die: ``digits (6,)`` digit-set indices per face,
    ``labels (6,)`` their classes, ``area (V, 6)`` the image fraction each face covers in each
    view, ``seen (V, 6)``: ``area >= min_face_area``."""

    digits: np.ndarray
    labels: np.ndarray
    area: np.ndarray
    seen: np.ndarray

    @property
    def hidden(self) -> np.ndarray:
        """``(V, 6)`` bool: no part of the face is in view."""
        return self.area <= 0


@dataclass(frozen=True)
class ViewSplit:
    """View indices of one scene: ``context (K,)``, ``target (N,)`` and, for a hidden-face split,
    the side ``face`` that every target shows and no context view sees (None: random split)."""

    context: np.ndarray
    target: np.ndarray
    face: int | None = None


def hidden_sides(faces: DiceFaces, context) -> list[int]:
    """The side faces hidden from every view in ``context``."""
    return [f for f in SIDES if faces.hidden[np.asarray(context, int), f].all()]


def hidden_face_targets(
    faces: DiceFaces, context, targets: int, rng: np.random.Generator
) -> ViewSplit:
    """``targets`` views that all see one side face hidden from the given ``context`` views."""
    hidden = hidden_sides(faces, context)
    if not hidden:
        raise ValueError(
            f"no face hidden from the context: views {list(context)} show part of all four sides "
            "of the die; choose context views that miss one"
        )
    shown = [f for f in hidden if faces.seen[:, f].sum() >= targets]
    if not shown:
        raise ValueError(
            f"fewer than {targets} views see a side hidden from the context (sides {hidden}); "
            "ask for fewer targets or render more views per scene"
        )
    face = shown[int(rng.integers(len(shown)))]
    target = rng.choice(np.flatnonzero(faces.seen[:, face]), targets, replace=False)
    return ViewSplit(np.asarray(context, int), np.sort(target), face)


def split_views(
    faces: DiceFaces,
    split: str,
    contexts: int,
    targets: int,
    rng: np.random.Generator,
    context_sides: int = 0,
) -> ViewSplit:
    """``contexts`` context and ``targets`` target views of the scene of ``faces``.

    ``random``: disjoint random views. ``hidden-face``: a random side face ``f`` hidden from at
    least ``contexts`` views and seen by ``targets`` views; the context is drawn from the views
    it is hidden from (so it sees at most three sides) and, with ``context_sides`` > 0, sees at
    least that many sides (the first of up to ``TRIES`` random draws per face, the faces in
    random order); the targets all see ``f``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    seen, hidden = faces.seen, faces.hidden
    views = len(seen)
    if contexts < 1 or targets < 1 or contexts + targets > views:
        raise ValueError(
            f"need contexts >= 1, targets >= 1 and contexts + targets <= views ({views}), "
            f"got {contexts} + {targets}"
        )
    if not 0 <= context_sides <= len(SIDES) - 1:
        raise ValueError(
            f"context_sides must be in 0..3 (one side stays hidden), got {context_sides}"
        )
    if split == "random":
        order = rng.permutation(views)
        return ViewSplit(np.sort(order[:contexts]), np.sort(order[contexts : contexts + targets]))
    sides = [f for f in SIDES if hidden[:, f].sum() >= contexts and seen[:, f].sum() >= targets]
    if not sides:
        raise ValueError(
            f"no side face is hidden from {contexts} views and seen by {targets} others "
            f"(views seeing each side: {seen[:, list(SIDES)].sum(0).tolist()}); use fewer "
            "context or target views, or render more views per scene"
        )
    for face in rng.permutation(sides).tolist():
        for _ in range(TRIES):
            context = np.sort(rng.choice(np.flatnonzero(hidden[:, face]), contexts, replace=False))
            if seen[context][:, list(SIDES)].any(0).sum() >= context_sides:
                target = rng.choice(np.flatnonzero(seen[:, face]), targets, replace=False)
                return ViewSplit(context, np.sort(target), face)
    raise ValueError(
        f"no context of {contexts} views that miss a side saw {context_sides} sides in {TRIES} "
        "draws per side; lower context_sides or render more views per scene"
    )
