"""Padded batches of primitives, the renderer's scene description.

Every primitive lives in its own *unit object space* and is placed in the world by
``world = center + rotation @ (size * p_unit)``; ``size`` holds the half-extents along the
object's axes. The unit shapes are (``kind`` ids):

- ``BOX`` (0): the cube ``[-1, 1]^3``; faces carry textures.
- ``SPHERE`` (1): the unit ball.
- ``CYLINDER`` (2): ``x^2 + y^2 <= 1``, ``|z| <= 1``, with both caps.
- ``CONE`` (3): apex at ``z = 1``, base disc of radius 1 at ``z = -1``.

A room is five boxes (floor and four walls); a capsule is a cylinder plus two spheres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

BOX, SPHERE, CYLINDER, CONE = 0, 1, 2, 3
NO_TEXTURE = -1

# Unit-space quadric ``x^2 + y^2 + a z^2 + b z + c = 0`` and squared cap radii per kind
# (-1: no cap). Boxes are intersected by the slab test and ignore these rows.
QUADRIC_COEFFS = {
    BOX: (0.0, 0.0, 0.0, -1.0, -1.0),
    SPHERE: (1.0, 0.0, -1.0, -1.0, -1.0),
    CYLINDER: (0.0, 0.0, -1.0, 1.0, 1.0),
    CONE: (-0.25, 0.5, -0.25, 1.0, -1.0),
}


@dataclass
class Primitives:
    """A batch of ``B`` scenes, each padded to ``P`` primitive slots.

    Attributes:
        kind: ``(B, P)`` int64 kind id (``BOX`` ...).
        center: ``(B, P, 3)`` float32 world position of the object-space origin.
        rotation: ``(B, P, 3, 3)`` float32 object-to-world rotation (columns = object axes).
        size: ``(B, P, 3)`` float32 half-extents, all > 0.
        color: ``(B, P, 3)`` float32 albedo in ``[0, 1]``.
        texture: ``(B, P)`` int64 index into the texture stack, ``NO_TEXTURE`` for none.
        valid: ``(B, P)`` bool; invalid slots are ignored.
    """

    kind: torch.Tensor
    center: torch.Tensor
    rotation: torch.Tensor
    size: torch.Tensor
    color: torch.Tensor
    texture: torch.Tensor
    valid: torch.Tensor

    @property
    def num_scenes(self) -> int:
        return self.kind.shape[0]

    @property
    def num_slots(self) -> int:
        return self.kind.shape[1]

    def to(self, device: torch.device | str | None) -> Primitives:
        """The same primitives on ``device``."""
        return Primitives(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def index_select(self, index: torch.Tensor) -> Primitives:
        """Scenes ``index`` (``(n,)`` int64), e.g. one row per rendered image."""
        return Primitives(
            **{f.name: getattr(self, f.name).index_select(0, index) for f in fields(self)}
        )


class SceneBuilder:
    """Collects the primitives of ONE scene (numpy, float64) before batching.

    Example::

        b = SceneBuilder()
        b.box(center=(0, 0, 0.5), half=(0.5, 0.5, 0.5), color=(1, 0, 0))
        prims = stack_scenes([b], slots=4)
    """

    def __init__(self) -> None:
        self.rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = []

    def add(self, kind, center, half, color, rotation=None, texture: int = NO_TEXTURE) -> None:
        """Append one primitive; ``rotation`` is a 3x3 object-to-world matrix (identity if None)."""
        half = np.asarray(half, dtype=np.float64)
        if np.any(half <= 0):
            raise ValueError(f"primitive half-extents must be > 0, got {half.tolist()}")
        rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
        self.rows.append(
            (kind, np.asarray(center, float), rot, half, np.asarray(color, float), int(texture))
        )

    def box(self, center, half, color, rotation=None, texture: int = NO_TEXTURE) -> None:
        self.add(BOX, center, half, color, rotation, texture)

    def sphere(self, center, radius: float, color) -> None:
        self.add(SPHERE, center, (radius, radius, radius), color)

    def cylinder(self, center, radius: float, half_height: float, color, rotation=None) -> None:
        self.add(CYLINDER, center, (radius, radius, half_height), color, rotation)

    def cone(self, center, radius: float, half_height: float, color, rotation=None) -> None:
        self.add(CONE, center, (radius, radius, half_height), color, rotation)

    def capsule(self, center, radius: float, half_length: float, color) -> None:
        """A vertical capsule: a cylinder of ``half_length`` capped by two spheres (3 slots)."""
        cx, cy, cz = center
        self.cylinder(center, radius, half_length, color)
        self.sphere((cx, cy, cz - half_length), radius, color)
        self.sphere((cx, cy, cz + half_length), radius, color)


def rotation_z(angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about the world z axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def stack_scenes(scenes: list[SceneBuilder], slots: int | None = None) -> Primitives:
    """Pad ``B`` scenes to ``slots`` primitives each (default: the largest scene) -> Primitives."""
    slots = max(len(s.rows) for s in scenes) if slots is None else slots
    n = len(scenes)
    kind = np.zeros((n, slots), np.int64)
    center = np.zeros((n, slots, 3), np.float32)
    rotation = np.tile(np.eye(3, dtype=np.float32), (n, slots, 1, 1))
    size = np.ones((n, slots, 3), np.float32)
    color = np.zeros((n, slots, 3), np.float32)
    texture = np.full((n, slots), NO_TEXTURE, np.int64)
    valid = np.zeros((n, slots), bool)
    for i, scene in enumerate(scenes):
        if len(scene.rows) > slots:
            raise ValueError(f"scene {i} has {len(scene.rows)} primitives > {slots} slots")
        for j, (k, c, r, h, col, tex) in enumerate(scene.rows):
            kind[i, j], center[i, j], rotation[i, j] = k, c, r
            size[i, j], color[i, j], texture[i, j], valid[i, j] = h, col, tex, True
    return Primitives(
        kind=torch.from_numpy(kind),
        center=torch.from_numpy(center),
        rotation=torch.from_numpy(rotation),
        size=torch.from_numpy(size),
        color=torch.from_numpy(color),
        texture=torch.from_numpy(texture),
        valid=torch.from_numpy(valid),
    )
