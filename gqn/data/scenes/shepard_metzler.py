"""Shepard-Metzler objects: N unit cubes joined face to face, seen from a sphere of cameras."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gqn.data.render import RenderSettings, SceneBuilder
from gqn.data.scenes.base import RayCastFamily, SceneSpec, help_field, random_color, scene_rng
from gqn.viewpoint import look_at_origin

_STEPS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


def random_polycube(rng: np.random.Generator, parts: int) -> np.ndarray:
    """``(parts, 3)`` int lattice cells of a face-connected object with no repeated cell.

    A self-avoiding random walk from the origin; if the walk's head is boxed in (possible only
    for long walks) it continues from a random earlier cube that still has a free neighbour.
    """
    cells = [(0, 0, 0)]
    occupied = {cells[0]}
    head = 0
    while len(cells) < parts:
        free = [tuple(int(c) for c in np.add(cells[head], s)) for s in _STEPS]
        free = [c for c in free if c not in occupied]
        if not free:
            head = int(rng.integers(len(cells)))
            continue
        cell = free[int(rng.integers(len(free)))]
        cells.append(cell)
        occupied.add(cell)
        head = len(cells) - 1
    return np.array(cells, dtype=np.int64)


def sphere_cameras(
    rng: np.random.Generator, views: int, r_min: float, r_max: float, pitch_limit_deg: float
) -> np.ndarray:
    """``(views, 3)`` positions uniform on the sphere zone ``|elevation| <= pitch_limit``."""
    z_max = math.sin(math.radians(pitch_limit_deg))
    z = rng.uniform(-z_max, z_max, views)
    azimuth = rng.uniform(-math.pi, math.pi, views)
    radius = rng.uniform(r_min, r_max, views) if r_max > r_min else np.full(views, r_min)
    ring = np.sqrt(1 - z * z)
    return radius[:, None] * np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], -1)


@dataclass
class ShepardMetzler(RayCastFamily):
    """DeepMind-style Shepard-Metzler scenes (black background, no room, no shadows)."""

    name = "shepard-metzler"
    swapped_property = "colours"

    parts: int = help_field(5, "number of cubes per object (>= 1)")
    views: int = help_field(15, "views per scene")
    radius_min: float = help_field(3.333, "smallest camera distance from the object's centre")
    radius_max: float = help_field(3.333, "largest camera distance (= radius_min: fixed radius)")
    pitch_limit_deg: float = help_field(
        90.0, "cameras uniform on the sphere zone |elevation| <= this (90 = whole sphere)"
    )
    cube_size: float = help_field(0.385, "edge length of each cube in world units")
    fov_deg: float = help_field(45.0, "camera field of view across the image width, degrees")
    ambient: float = help_field(0.55, "ambient light: shade of faces turned away from the light")
    diffuse: float = help_field(
        0.75, "directional light: added to ambient on faces facing the light (sum > 1 saturates)"
    )

    def validate(self) -> None:
        if self.parts < 1:
            raise ValueError(f"shepard-metzler: parts must be >= 1, got {self.parts}")
        if self.views < 1:
            raise ValueError(f"shepard-metzler: views must be >= 1, got {self.views}")
        if self.radius_min > self.radius_max:
            raise ValueError(
                f"shepard-metzler: radius_min ({self.radius_min}) > radius_max ({self.radius_max})"
            )
        if self.radius_min <= self.cube_size * math.sqrt(3):
            raise ValueError(
                f"shepard-metzler: radius_min ({self.radius_min}) must exceed cube_size * sqrt(3)"
                f" = {self.cube_size * math.sqrt(3):.3f}, or cameras sit inside the object"
            )
        if not 0 < self.pitch_limit_deg <= 90:
            raise ValueError(
                f"shepard-metzler: pitch_limit_deg must be in (0, 90], got {self.pitch_limit_deg}"
            )
        if self.cube_size <= 0 or not 0 < self.fov_deg < 180:
            raise ValueError("shepard-metzler: need cube_size > 0 and 0 < fov_deg < 180")
        if not 0 <= self.ambient <= 1 or self.diffuse < 0:
            raise ValueError("shepard-metzler: need 0 <= ambient <= 1 and diffuse >= 0")

    @property
    def views_per_scene(self) -> int:
        return self.views

    def slots(self) -> int:
        return self.parts

    def render_settings(self) -> RenderSettings:
        return RenderSettings(
            image_size=self.image_size,
            fov_deg=self.fov_deg,
            antialias=self.antialias,
            shadows=False,
            ambient=self.ambient,
            diffuse=self.diffuse,
            compile=self.compile,
        )

    def build_scene(self, rng: np.random.Generator) -> SceneSpec:
        cells = random_polycube(rng, self.parts).astype(np.float64)
        centres = (cells - cells.mean(axis=0)) * self.cube_size
        builder = SceneBuilder()
        half = (self.cube_size / 2,) * 3
        for c in centres:
            builder.box(c, half, random_color(rng, (0.75, 1.0), (0.8, 1.0)))
        positions = sphere_cameras(
            rng, self.views, self.radius_min, self.radius_max, self.pitch_limit_deg
        )
        poses = look_at_origin(torch.from_numpy(positions)).numpy()
        light_dir = rng.normal(size=3)
        light_dir[2] = abs(light_dir[2]) + 0.5
        light = 10.0 * light_dir / np.linalg.norm(light_dir)
        return SceneSpec(builder, poses, light)

    def mixed_scene(self, base: np.random.Generator, other: np.random.Generator) -> SceneSpec:
        """``base``'s object, cameras and light with the cube colours of ``other``'s object
        (cube i takes the colour of the other's cube i)."""
        spec, colours = self.build_scene(base), self.build_scene(other).builder.rows
        spec.builder.rows = [
            (*row[:4], theirs[4], row[5])
            for row, theirs in zip(spec.builder.rows, colours, strict=True)
        ]
        return spec

    def render_uniform(
        self, seed: int, indices: Sequence[int], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scenes ``indices`` of dataset ``seed`` (same objects and cameras as
        :meth:`render_scenes`) with every cube in the first cube's colour and flat shading
        (ambient 1, no directional light): objects of one uniform solid colour, no block borders
        or shades (thesis §5.3.2)."""
        specs = [self.build_scene(scene_rng(self.name, int(seed), int(i))) for i in indices]
        for spec in specs:
            first = spec.builder.rows[0][4]
            spec.builder.rows = [(*row[:4], first, row[5]) for row in spec.builder.rows]
        flat = dataclasses.replace(self, ambient=1.0, diffuse=0.0)
        return flat.render_specs(specs, device)
