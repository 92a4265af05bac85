"""The viewer's model logic: a scene's context views, an orbit camera, renders from the prior.

A render is the GQN's sampling procedure (seed 001; eqs 4.4-4.10): r = sum_k f(x_k, v_k) of the
chosen context views, then the generator run from the prior at the query viewpoint v^q. Only the
shared interface is used (:meth:`SceneModel.represent`, :meth:`SceneModel.generate`), so every
registered model works.

- r is computed once per change of (scene, context views) and kept for every camera move.
- All cameras of one request are rendered in one ``generate`` call (b = 1, n cameras, S = 1).
- The prior's noise comes from a ``torch.Generator`` seeded afresh with the page's sample seed
  for every render: while the seed is held, moving the camera keeps the noise, so a CGQN
  (``consistent``) renders one draw of its scene latent z ~ p(z | r) from every pose, and a GQN
  draws its per-view latents from the same stream (as the orbit GIF does, :mod:`gqn.viz.orbit`);
  a new sample is a new seed.

The camera looks at the origin from ``distance`` at ``yaw`` and ``pitch`` (the convention of
:func:`gqn.viewpoint.look_at_origin`), or sits exactly at one of the scene's views.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gqn.models.base import SceneModel
from gqn.viewpoint import look_direction, pose_to_viewpoint

# A camera may move from half the nearest to twice the farthest view's distance to the origin.
DISTANCE_RANGE = (0.5, 2.0)
# Poses closer than this (world units and radians) to a view's pose show that view's image.
POSE_TOLERANCE = 1e-3


class SceneNotFound(IndexError):
    """A scene index outside the viewer's scenes (the page gets 404)."""


@dataclass(frozen=True)
class OrbitCamera:
    """A camera at ``distance`` from the origin looking at it, with ``yaw`` and ``pitch`` in
    radians (``yaw = atan2(y, -x)``, ``pitch = atan2(-z, sqrt(x^2 + y^2))``)."""

    yaw: float
    pitch: float
    distance: float

    def pose(self) -> torch.Tensor:
        """The raw pose (5,) float64: position = -distance * look_direction(yaw, pitch)."""
        yaw, pitch = torch.tensor([self.yaw, self.pitch], dtype=torch.float64)
        position = -self.distance * look_direction(yaw, pitch)
        return torch.cat([position, yaw[None], pitch[None]])

    @classmethod
    def of_pose(cls, pose: torch.Tensor) -> OrbitCamera:
        """The orbit camera at a raw pose's (5,) yaw, pitch and distance to the origin."""
        return cls(float(pose[3]), float(pose[4]), float(pose[:3].double().norm()))


@dataclass(frozen=True)
class Scene:
    """Images (V, 3, s, s) in [0, 1], raw poses (V, 5), and the distances a camera may take."""

    images: torch.Tensor
    poses: torch.Tensor

    @property
    def distance_range(self) -> tuple[float, float]:
        d = self.poses[:, :3].double().norm(dim=-1)
        return DISTANCE_RANGE[0] * float(d.min()), DISTANCE_RANGE[1] * float(d.max())

    def cameras(self) -> list[OrbitCamera]:
        return [OrbitCamera.of_pose(p) for p in self.poses]

    def check_camera(self, camera: OrbitCamera) -> None:
        """ValueError naming the value and the range when the camera is off the scene's orbits."""
        lo, hi = self.distance_range
        values = (camera.yaw, camera.pitch, camera.distance)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"camera yaw, pitch and distance must be finite, got {values}")
        if abs(camera.pitch) > math.pi / 2:
            raise ValueError(f"camera pitch {camera.pitch:.4g} rad is outside [-pi/2, pi/2]")
        if not lo <= camera.distance <= hi:
            raise ValueError(
                f"camera distance {camera.distance:.4g} is outside this scene's range "
                f"[{lo:.4g}, {hi:.4g}]"
            )

    def view_at(self, pose: torch.Tensor) -> int | None:
        """The index of the view whose pose equals ``pose`` (5,) (within POSE_TOLERANCE; angles
        modulo 2 pi), or None."""
        diff = self.poses.double() - pose.double()
        angles = torch.remainder(diff[:, 3:] + math.pi, 2 * math.pi) - math.pi
        error = torch.cat([diff[:, :3], angles], dim=1).abs().amax(dim=1)
        best = int(error.argmin())
        return best if float(error[best]) < POSE_TOLERANCE else None


@dataclass(frozen=True)
class Render:
    """Mean images (n, 3, s, s) in [0, 1] of n cameras, and the index of the scene's view each
    camera sits at (its ground truth) or None."""

    images: torch.Tensor
    truth: list[int | None]


class ViewerSession:
    """Renders of ``num_scenes`` scenes, ``load_scene(i) -> (images (V, 3, s, s), poses (V, 5))``,
    by ``model``. Thread-safe: the server's worker threads take turns (one lock)."""

    def __init__(
        self,
        model: SceneModel,
        load_scene: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
        num_scenes: int,
    ) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.num_scenes = num_scenes
        self._load_scene = load_scene
        self._lock = threading.Lock()
        self._scene: tuple[int, Scene] | None = None
        self._r: tuple[tuple[int, tuple[int, ...]], torch.Tensor] | None = None

    def scene(self, index: int) -> Scene:
        """Scene ``index`` (the last one asked for is kept)."""
        if not 0 <= index < self.num_scenes:
            raise SceneNotFound(f"scene {index} out of range: there are {self.num_scenes} scenes")
        with self._lock:
            if self._scene is None or self._scene[0] != index:
                self._scene = (index, Scene(*self._load_scene(index)))
            return self._scene[1]

    def representation(self, index: int, context: tuple[int, ...]) -> torch.Tensor:
        """r (1, ...) of the views ``context`` of scene ``index``: computed when (scene,
        context) changes, else the kept one."""
        scene = self.scene(index)
        views = len(scene.poses)
        bad = [k for k in context if not 0 <= k < views]
        if bad or len(set(context)) != len(context):
            raise ValueError(
                f"context views must be distinct view indices in 0..{views - 1}, got "
                f"{list(context)}"
            )
        key = (index, context)
        with self._lock:
            if self._r is None or self._r[0] != key:
                picked = list(context)
                x = scene.images[picked][None].to(self.device)
                v = pose_to_viewpoint(scene.poses[picked])[None].to(self.device)
                with torch.no_grad():
                    self._r = (key, self.model.represent(x, v))
            return self._r[1]

    def render(
        self,
        index: int,
        context: tuple[int, ...],
        cameras: list[OrbitCamera | int],
        seed: int,
    ) -> Render:
        """The model's renders of scene ``index`` from ``cameras`` (an orbit camera, or the index
        of a view to sit exactly at), with prior noise from ``seed``."""
        if not cameras:
            raise ValueError("a render needs at least one camera")
        scene = self.scene(index)
        r = self.representation(index, context)
        poses = []
        for camera in cameras:
            if isinstance(camera, int):
                if not 0 <= camera < len(scene.poses):
                    raise ValueError(
                        f"view {camera} out of range: the scene has {len(scene.poses)} views"
                    )
                poses.append(scene.poses[camera].double())
            else:
                scene.check_camera(camera)
                poses.append(camera.pose())
        queries = pose_to_viewpoint(torch.stack(poses).float())[None].to(self.device)
        with self._lock, torch.no_grad():
            generator = torch.Generator(device=self.device).manual_seed(seed)
            images = self.model.generate(r, queries, 1, generator)[0, 0].cpu()
        return Render(images, [scene.view_at(p) for p in poses])
