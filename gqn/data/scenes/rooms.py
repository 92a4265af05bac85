"""Rooms: a square room with coloured floor and walls, a few primitive objects, a point light."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gqn.data.render import NO_TEXTURE, RenderSettings, SceneBuilder, rotation_z
from gqn.data.scenes.base import RayCastFamily, SceneSpec, help_field, random_color

SHAPES = ("cube", "box", "sphere", "cylinder", "cone", "capsule")
CAMERAS = ("ring", "free")
WALL = 0.1  # thickness of the floor slab and the walls, outside the room's interior
ROOM_SLOTS = 5  # floor + 4 walls come first; lit from inside, they cast no shadows


def pose_towards(position: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Raw pose ``(5,)`` of a camera at ``position`` looking along ``direction`` (not unit)."""
    d = direction / np.linalg.norm(direction)
    yaw = math.atan2(-d[1], d[0])
    pitch = math.asin(float(np.clip(d[2], -1.0, 1.0)))
    return np.array([*position, yaw, pitch])


def ring_pose(rng: np.random.Generator, radius: float, height: float) -> np.ndarray:
    """Raw pose ``(5,)`` at a uniform random angle on the circle of ``radius`` at ``height``
    around the room's centre, looking at the centre of the floor (cameras so drawn are not
    equally spaced)."""
    theta = rng.uniform(-math.pi, math.pi)
    pos = np.array([radius * math.cos(theta), radius * math.sin(theta), height])
    return pose_towards(pos, -pos)


def room_render_settings(family) -> RenderSettings:
    """Render settings of a family of scenes in a room (rooms, MNIST dice): the family's image
    size, field of view, antialiasing, shadows, ambient (diffuse = 1 - ambient) and compile
    switch; the room's :data:`ROOM_SLOTS` primitives cast no shadows."""
    return RenderSettings(
        image_size=family.image_size,
        fov_deg=family.fov_deg,
        antialias=family.antialias,
        shadows=family.shadows,
        ambient=family.ambient,
        diffuse=1.0 - family.ambient,
        compile=family.compile,
        shadow_casters_from=ROOM_SLOTS,
    )


def add_room(
    b: SceneBuilder,
    rng: np.random.Generator,
    room_size: float,
    wall_height: float,
    wall_textures: tuple[int, int, int, int] | None = None,
) -> list[tuple[float, float, float]]:
    """The floor slab and four walls (``ROOM_SLOTS`` boxes, open ceiling), each a random colour;
    ``wall_textures``: texture ids of the four walls (None: plain colours). Returns the four
    walls' colours."""
    half, h = room_size / 2, wall_height
    b.box(
        (0, 0, -WALL),
        (half + 2 * WALL, half + 2 * WALL, WALL),
        random_color(rng, (0.1, 0.6), (0.4, 0.9)),
    )
    colors = []
    for k, (sx, sy) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
        extent = (WALL, half + 2 * WALL, h / 2) if sx else (half + 2 * WALL, WALL, h / 2)
        centre = (sx * (half + WALL), sy * (half + WALL), h / 2)
        texture = NO_TEXTURE if wall_textures is None else wall_textures[k]
        colors.append(random_color(rng, (0.2, 0.8), (0.5, 0.95)))
        b.box(centre, extent, colors[-1], texture=texture)
    return colors


def _add_object(
    b: SceneBuilder, shape: str, x: float, y: float, r: float, angle: float, rng, color
) -> None:
    """One object of footprint radius ``r`` standing on the floor at ``(x, y)``."""
    rot = rotation_z(angle)
    if shape == "cube":
        h = r / math.sqrt(2)
        b.box((x, y, h), (h, h, h), color, rot)
    elif shape == "box":
        phi = rng.uniform(math.pi / 8, 3 * math.pi / 8)
        hz = rng.uniform(0.4, 1.2) * r
        b.box((x, y, hz), (r * math.cos(phi), r * math.sin(phi), hz), color, rot)
    elif shape == "sphere":
        b.sphere((x, y, r), r, color)
    elif shape == "cylinder":
        hz = rng.uniform(0.5, 1.5) * r
        b.cylinder((x, y, hz), r, hz, color)
    elif shape == "cone":
        hz = rng.uniform(0.7, 1.5) * r
        b.cone((x, y, hz), r, hz, color)
    else:
        rc, hl = 0.6 * r, rng.uniform(0.3, 0.9) * r
        b.capsule((x, y, rc + hl), rc, hl, color)


def room_light(rng: np.random.Generator, room_size: float, wall_height: float) -> np.ndarray:
    """A random point light ``(3,)`` above the floor, inside the room's footprint (so the room's
    own boxes never shadow its interior)."""
    half = room_size / 2
    return np.array([*rng.uniform(-0.8 * half, 0.8 * half, 2), rng.uniform(0.6, 1.1) * wall_height])


@dataclass
class Rooms(RayCastFamily):
    """DeepMind-style rooms (``rooms_ring_camera`` / ``rooms_free_camera``), with hard shadows."""

    name = "rooms"
    swapped_property = "objects"

    views: int = help_field(10, "views per scene")
    camera: str = help_field("ring", "'ring': on a circle looking at the centre; 'free': random")
    min_objects: int = help_field(1, "fewest objects per room (>= 0)")
    max_objects: int = help_field(3, "most objects per room")
    shapes: tuple[str, ...] = help_field(SHAPES, "object shapes to draw from: " + ",".join(SHAPES))
    object_rotations: bool = help_field(True, "rotate boxes and cubes randomly about the vertical")
    object_size_min: float = help_field(0.2, "smallest object footprint radius")
    object_size_max: float = help_field(0.4, "largest object footprint radius")
    object_region: float = help_field(1.1, "objects lie inside this radius of the room centre")
    room_size: float = help_field(4.0, "side length of the square room")
    wall_height: float = help_field(2.0, "height of the walls")
    ring_radius: float = help_field(1.7, "ring camera: distance from the room's centre")
    ring_height: float = help_field(0.7, "ring camera: height above the floor")
    free_height_min: float = help_field(0.3, "free camera: lowest height")
    free_height_max: float = help_field(1.0, "free camera: highest height")
    pitch_min_deg: float = help_field(-35.0, "free camera: lowest pitch (negative looks down)")
    pitch_max_deg: float = help_field(10.0, "free camera: highest pitch")
    fov_deg: float = help_field(60.0, "camera field of view across the image width, degrees")
    shadows: bool = help_field(True, "cast hard shadows from the point light")
    ambient: float = help_field(0.35, "ambient light fraction")

    def validate(self) -> None:
        def bad(msg: str) -> ValueError:
            return ValueError(f"rooms: {msg}")

        if self.views < 1:
            raise bad(f"views must be >= 1, got {self.views}")
        if self.camera not in CAMERAS:
            raise bad(f"camera must be one of {CAMERAS}, got {self.camera!r}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise bad(
                f"need 0 <= min_objects ({self.min_objects}) <= max_objects ({self.max_objects})"
            )
        if isinstance(self.shapes, str):
            self.shapes = tuple(s.strip() for s in self.shapes.split(",") if s.strip())
        self.shapes = tuple(self.shapes)
        unknown = [s for s in self.shapes if s not in SHAPES]
        if unknown or not self.shapes:
            raise bad(f"shapes must be a non-empty subset of {SHAPES}, got {list(self.shapes)}")
        if not 0 < self.object_size_min <= self.object_size_max:
            raise bad(
                f"need 0 < object_size_min ({self.object_size_min}) <= object_size_max "
                f"({self.object_size_max})"
            )
        half = self.room_size / 2
        if self.object_region <= 0 or self.object_region + self.object_size_max >= half:
            raise bad(
                f"object_region + object_size_max must lie inside the room "
                f"(< room_size / 2 = {half})"
            )
        if not self.object_region + self.object_size_max < self.ring_radius < half:
            raise bad(
                f"ring_radius ({self.ring_radius}) must lie between the objects "
                f"(object_region + object_size_max) and the walls (room_size / 2)"
            )
        if not 0 < self.free_height_min <= self.free_height_max < self.wall_height:
            raise bad("need 0 < free_height_min <= free_height_max < wall_height")
        if not 0 < self.ring_height < self.wall_height:
            raise bad("need 0 < ring_height < wall_height")
        if not -90 < self.pitch_min_deg <= self.pitch_max_deg < 90:
            raise bad("need -90 < pitch_min_deg <= pitch_max_deg < 90")
        if not 0 < self.fov_deg < 180 or not 0 <= self.ambient <= 1:
            raise bad("need 0 < fov_deg < 180 and 0 <= ambient <= 1")

    @property
    def views_per_scene(self) -> int:
        return self.views

    def slots(self) -> int:
        return ROOM_SLOTS + 3 * self.max_objects

    def render_settings(self) -> RenderSettings:
        return room_render_settings(self)

    def _objects(self, b: SceneBuilder, rng: np.random.Generator) -> list[tuple]:
        """Place non-overlapping objects; returns their (x, y, r) footprints."""
        count = int(rng.integers(self.min_objects, self.max_objects + 1))
        placed: list[tuple] = []
        for _ in range(count):
            r = rng.uniform(self.object_size_min, self.object_size_max)
            for _try in range(100):
                rho = self.object_region * math.sqrt(rng.uniform())
                theta = rng.uniform(-math.pi, math.pi)
                x, y = rho * math.cos(theta), rho * math.sin(theta)
                if all(math.hypot(x - px, y - py) > r + pr + 0.05 for px, py, pr in placed):
                    break
            else:
                continue
            shape = self.shapes[int(rng.integers(len(self.shapes)))]
            angle = rng.uniform(-math.pi, math.pi) if self.object_rotations else 0.0
            _add_object(b, shape, x, y, r, angle, rng, random_color(rng, (0.6, 1.0), (0.6, 1.0)))
            placed.append((x, y, r))
        return placed

    def _cameras(self, rng: np.random.Generator, placed: list[tuple]) -> np.ndarray:
        """``(V, 5)`` raw poses."""
        poses = []
        half = self.room_size / 2
        for _ in range(self.views):
            if self.camera == "ring":
                poses.append(ring_pose(rng, self.ring_radius, self.ring_height))
                continue
            for _try in range(100):
                x, y = rng.uniform(-half + 0.3, half - 0.3, 2)
                if all(math.hypot(x - px, y - py) > pr + 0.3 for px, py, pr in placed):
                    break
            z = rng.uniform(self.free_height_min, self.free_height_max)
            yaw = rng.uniform(-math.pi, math.pi)
            pitch = math.radians(rng.uniform(self.pitch_min_deg, self.pitch_max_deg))
            poses.append(np.array([x, y, z, yaw, pitch]))
        return np.stack(poses)

    def build_scene(self, rng: np.random.Generator) -> SceneSpec:
        b = SceneBuilder()
        add_room(b, rng, self.room_size, self.wall_height)
        placed = self._objects(b, rng)
        poses = self._cameras(rng, placed)
        return SceneSpec(b, poses, room_light(rng, self.room_size, self.wall_height))

    def mixed_scene(self, base: np.random.Generator, other: np.random.Generator) -> SceneSpec:
        """``base``'s room (floor, walls), cameras and light with ``other``'s objects. Ring
        cameras only: free cameras are placed clear of their own room's objects, not of the
        other's."""
        if self.camera != "ring":
            raise ValueError(
                "rooms: scene-algebra triples need ring cameras (free cameras avoid only their "
                "own room's objects); use a store made with camera=ring"
            )
        spec, theirs = self.build_scene(base), self.build_scene(other)
        spec.builder.rows = spec.builder.rows[:ROOM_SLOTS] + theirs.builder.rows[ROOM_SLOTS:]
        return spec
