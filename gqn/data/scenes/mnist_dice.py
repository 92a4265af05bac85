"""MNIST dice (seed 003 §4.2): a cube with a different MNIST digit on each face, in a room.

Each scene: the rooms family's floor and four walls (:func:`~gqn.data.scenes.rooms.add_room`),
each wall a random colour and a random two-tone pattern (``wall_patterns``); one cube ("die") of
random size, its centre uniform in a disc around the room's centre, turned by a uniform random
angle about the vertical, its six faces showing digits of six different classes drawn from a
fixed set of MNIST digits (white ink on the die's random colour); a random point light with
hard shadows; ``views`` cameras on a circle of fixed radius and height at uniform random angles
(so not equally spaced), all facing the room's centre. Which faces each view sees is a function
of the scene (:mod:`gqn.data.scenes.dice_views`); like every scene it is recomputed from
(family, parameters, seed, index) — :meth:`MnistDice.faces`, :func:`faces_of` for a store —
not stored.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gqn.data.render import RenderSettings, SceneBuilder, rotation_z
from gqn.data.scenes.base import RayCastFamily, SceneSpec, help_field, random_color, scene_rng
from gqn.data.scenes.dice_views import DiceFaces, face_areas
from gqn.data.scenes.rooms import (
    ROOM_SLOTS,
    add_room,
    ring_pose,
    room_light,
    room_render_settings,
)

if TYPE_CHECKING:
    from gqn.data.store import SceneStore

FACES = 6
DIGIT_SET = Path(__file__).parent / "assets" / "mnist100.npz"  # provenance: assets/README.md
WALL_PATTERNS = ("plain", "stripes", "checker")
PATTERN_WIDTHS = (2, 4, 7)  # stripe / checker widths in texels (of 28)


@functools.cache
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The fixed digit set: ink ``(100, 28, 28)`` float32 in ``[0, 1]``, labels ``(100,)``;
    digit ``i`` has class ``i % 10``."""
    with np.load(DIGIT_SET) as f:
        return f["images"].astype(np.float32) / 255.0, f["labels"].astype(np.int64)


def wall_pattern(kind: str, rng: np.random.Generator, texels: int) -> np.ndarray:
    """A two-tone pattern ``(texels, texels)`` in ``{0, 1}``: plain, stripes (vertical or
    horizontal) or checker, of a random width from ``PATTERN_WIDTHS``."""
    if kind == "plain":
        return np.zeros((texels, texels))
    width = PATTERN_WIDTHS[int(rng.integers(len(PATTERN_WIDTHS)))]
    band = (np.arange(texels) // width) % 2
    if kind == "checker":
        return (band[:, None] + band[None, :]) % 2.0
    stripes = np.tile(band, (texels, 1)).astype(float)
    return stripes.T if rng.uniform() < 0.5 else stripes


@dataclass
class Die:
    """The cube of one scene: ``center (3,)``, ``half`` edge, ``rotation (3, 3)`` about the
    vertical, ``digits (6,)`` indices into the digit set per face (order: -x, +x, -y, +y, -z, +z
    of its own axes)."""

    center: np.ndarray
    half: float
    rotation: np.ndarray
    digits: np.ndarray


@dataclass
class MnistDice(RayCastFamily):
    """A die with six different MNIST digits in a room with patterned walls, ring cameras."""

    name = "mnist-dice"

    views: int = help_field(12, "views per scene")
    digits: int = help_field(100, "size of the digit set: the first N of the 100 MNIST digits")
    cube_size_min: float = help_field(0.5, "smallest edge length of the die")
    cube_size_max: float = help_field(0.7, "largest edge length of the die")
    cube_region: float = help_field(0.4, "the die's centre lies inside this radius of the centre")
    room_size: float = help_field(4.0, "side length of the square room")
    wall_height: float = help_field(2.0, "height of the walls")
    wall_patterns: tuple[str, ...] = help_field(
        WALL_PATTERNS, "wall patterns to draw from: " + ",".join(WALL_PATTERNS)
    )
    ring_radius: float = help_field(1.7, "cameras' distance from the room's centre")
    ring_height: float = help_field(0.9, "cameras' height above the floor")
    fov_deg: float = help_field(55.0, "camera field of view across the image width, degrees")
    shadows: bool = help_field(True, "cast hard shadows from the point light")
    ambient: float = help_field(0.35, "ambient light fraction")
    min_face_area: float = help_field(
        0.005, "a view sees a face covering at least this fraction of its image"
    )

    def validate(self) -> None:
        def bad(msg: str) -> ValueError:
            return ValueError(f"mnist-dice: {msg}")

        available = len(mnist_digits()[1])
        if self.views < 1:
            raise bad(f"views must be >= 1, got {self.views}")
        if not FACES <= self.digits <= available:
            raise bad(
                f"digits must be in {FACES}..{available} (a die needs {FACES} digit classes), "
                f"got {self.digits}"
            )
        if isinstance(self.wall_patterns, str):
            self.wall_patterns = tuple(p.strip() for p in self.wall_patterns.split(","))
        self.wall_patterns = tuple(p for p in self.wall_patterns if p)
        if not self.wall_patterns or set(self.wall_patterns) - set(WALL_PATTERNS):
            raise bad(
                f"wall_patterns must be a non-empty subset of {WALL_PATTERNS}, "
                f"got {list(self.wall_patterns)}"
            )
        if not 0 < self.cube_size_min <= self.cube_size_max:
            raise bad(
                f"need 0 < cube_size_min ({self.cube_size_min}) <= cube_size_max "
                f"({self.cube_size_max})"
            )
        reach = self.cube_region + self.cube_size_max / math.sqrt(2)  # the die's farthest edge
        if self.cube_region < 0 or not reach < self.ring_radius < self.room_size / 2:
            raise bad(
                f"ring_radius ({self.ring_radius}) must lie between the die (cube_region + "
                f"cube_size_max / sqrt 2 = {reach:.3f}) and the walls (room_size / 2)"
            )
        if not 0 < self.ring_height < self.wall_height:
            raise bad("need 0 < ring_height < wall_height")
        if not 0 < self.fov_deg < 180 or not 0 <= self.ambient <= 1:
            raise bad("need 0 < fov_deg < 180 and 0 <= ambient <= 1")
        if not 0 < self.min_face_area < 1:
            raise bad(f"min_face_area must be in (0, 1), got {self.min_face_area}")

    @property
    def views_per_scene(self) -> int:
        return self.views

    def slots(self) -> int:
        return ROOM_SLOTS + 1

    def render_settings(self) -> RenderSettings:
        return room_render_settings(self)

    def draw(self, rng: np.random.Generator) -> tuple[SceneSpec, Die]:
        """One scene and its die. Textures: 0 the die's faces, 1-4 the walls'."""
        b = SceneBuilder()
        walls = add_room(b, rng, self.room_size, self.wall_height, wall_textures=(1, 2, 3, 4))
        half = rng.uniform(self.cube_size_min, self.cube_size_max) / 2
        rho, theta = self.cube_region * math.sqrt(rng.uniform()), rng.uniform(-math.pi, math.pi)
        center = np.array([rho * math.cos(theta), rho * math.sin(theta), half])
        rotation = rotation_z(rng.uniform(-math.pi, math.pi))
        labels = mnist_digits()[1][: self.digits]
        classes = rng.choice(np.unique(labels), FACES, replace=False)
        digits = np.array([rng.choice(np.flatnonzero(labels == c)) for c in classes])
        die = Die(center, half, rotation, digits)
        color = np.array(random_color(rng, (0.5, 1.0), (0.3, 0.6)))
        b.box(center, (half,) * 3, color, rotation, texture=0)
        ink = mnist_digits()[0][digits][..., None]  # (6, 28, 28, 1)
        textures = [color + (1 - color) * ink]
        texels = ink.shape[1]
        for wall in walls:
            kind = self.wall_patterns[int(rng.integers(len(self.wall_patterns)))]
            shade = 1 - rng.uniform(0.2, 0.5) * wall_pattern(kind, rng, texels)
            textures.append(np.broadcast_to(np.multiply.outer(shade, wall), textures[0].shape))
        poses = np.stack(
            [ring_pose(rng, self.ring_radius, self.ring_height) for _ in range(self.views)]
        )
        light = room_light(rng, self.room_size, self.wall_height)
        return SceneSpec(b, poses, light, np.stack(textures).astype(np.float32)), die

    def build_scene(self, rng: np.random.Generator) -> SceneSpec:
        return self.draw(rng)[0]

    def faces(self, seed: int, index: int) -> DiceFaces:
        """The die of scene ``index`` of dataset ``seed`` and which faces its views see."""
        spec, die = self.draw(scene_rng(self.name, int(seed), int(index)))
        area = face_areas(die.center, die.half, die.rotation, spec.poses, self.fov_deg)
        labels = mnist_digits()[1][die.digits]
        return DiceFaces(die.digits, labels, area, area >= self.min_face_area)


def faces_of(store: SceneStore, index: int) -> DiceFaces:
    """:meth:`MnistDice.faces` of scene ``index`` of a store written by ``gqn data generate``."""
    source = store.manifest.source
    if source.get("kind") != "procedural" or source.get("family") != MnistDice.name:
        raise ValueError(
            f"{store.root}: scenes of {source.get('family') or source.get('kind')!r} are not "
            f"MNIST dice; generate them with `gqn data generate {MnistDice.name} DIR`"
        )
    return MnistDice(**source["params"]).faces(int(source["seed"]), index)
