"""The scene-family interface: a pure function (seed, scene index) -> frames and poses."""

from __future__ import annotations

import abc
import colorsys
import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from gqn.data.render import NO_TEXTURE, RenderSettings, SceneBuilder, render, stack_scenes

SUPPORTED_IMAGE_SIZES = (8, 16, 32, 64, 128, 256)


@dataclass
class SceneSpec:
    """One scene before batching: its primitives, ``V`` raw poses ``(V, 5)`` and light ``(3,)``.

    ``textures``: the scene's own cube-face textures ``(k, 6, h, w, 3)`` floats in ``[0, 1]``
    (:func:`gqn.data.render.render`), its boxes' texture ids counting from 0 within the scene;
    None: untextured. Every textured scene of a family uses the same ``(h, w)``.
    """

    builder: SceneBuilder
    poses: np.ndarray
    light: np.ndarray
    textures: np.ndarray | None = None


def scene_rng(family: str, seed: int, index: int) -> np.random.Generator:
    """Generator of scene ``index`` of dataset ``seed``: a hash of (family, seed, index) only."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and scene index must be >= 0, got {seed}, {index}")
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(family.encode()), seed, index]))


def random_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]):
    """An RGB triple in ``[0, 1]`` of uniform hue and saturation/value in the given ranges."""
    return colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))


def help_field(default: Any, text: str) -> Any:
    """A dataclass field with a one-line CLI help string in ``metadata["help"]``."""
    return field(default=default, metadata={"help": text})


@dataclass
class SceneFamily(abc.ABC):
    """Base of every family; subclasses are dataclasses whose fields are their parameters.

    ``render_scenes(seed, indices)`` returns ``frames`` uint8 ``(n, V, H, W, 3)`` and raw
    viewpoints ``poses`` float32 ``(n, V, 5)`` of the family's ``viewpoint`` kind: camera poses
    ``(x, y, z, yaw, pitch)`` in radians, or for ``time`` the timestamp in column 0 and zeros
    (the store's record layout, see :mod:`gqn.viewpoint` and :mod:`gqn.data.shard`).
    Scene ``i`` depends only on ``(name, seed, i)`` and the parameters, never on the batch.
    """

    name: ClassVar[str] = ""
    # the kind of viewpoint the family renders (:func:`gqn.viewpoint.viewpoint_encoder`)
    viewpoint: ClassVar[str] = "camera"

    image_size: int = help_field(64, "image height = width in pixels (8, 16, 32, 64, 128, 256)")

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_IMAGE_SIZES:
            raise ValueError(
                f"{self.name}: image_size must be one of {SUPPORTED_IMAGE_SIZES}, "
                f"got {self.image_size}"
            )
        self.validate()

    @property
    @abc.abstractmethod
    def views_per_scene(self) -> int:
        """Views rendered per scene ``V``."""

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise ValueError naming the parameter if the family's parameters are inconsistent."""

    @abc.abstractmethod
    def render_scenes(
        self, seed: int, indices: Sequence[int], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(n, V, H, W, 3)`` uint8, raw viewpoints ``(n, V, 5)`` float32 of ``indices``."""

    def params(self) -> dict:
        """Parameters as plain JSON/YAML values; ``make_family(name, **params())`` rebuilds it."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }


@dataclass
class RayCastFamily(SceneFamily):
    """A 3-D family drawn by the ray caster (:mod:`gqn.data.render`), seen from camera poses."""

    antialias: int = help_field(1, "supersampling factor per axis (1 = off, 2 = 2x2, ...)")
    compile: bool = help_field(
        False, "use torch.compile for the render kernel (faster after a 10-30 s warm-up)"
    )

    def __post_init__(self) -> None:
        if not 1 <= self.antialias <= 8:
            raise ValueError(f"{self.name}: antialias must be in 1..8, got {self.antialias}")
        super().__post_init__()

    @abc.abstractmethod
    def build_scene(self, rng: np.random.Generator) -> SceneSpec:
        """Draw one scene (primitives, ``V`` poses, light) from its own generator."""

    @abc.abstractmethod
    def render_settings(self) -> RenderSettings:
        """The renderer options of this family."""

    # What :meth:`mixed_scene` takes from the other scene (None: no scene-algebra triples).
    swapped_property: ClassVar[str | None] = None

    def slots(self) -> int | None:
        """Primitive slots per scene, fixed so compiled kernels see one shape (None: batch max)."""
        return None

    def mixed_scene(self, base: np.random.Generator, other: np.random.Generator) -> SceneSpec:
        """The scene drawn from ``base`` with its :attr:`swapped_property` taken from the scene
        drawn from ``other`` (cameras and light from ``base``): the variants scene algebra
        needs (:mod:`gqn.analysis.algebra`)."""
        raise ValueError(
            f"{self.name}: this family cannot make scene-algebra triples (no scene variants "
            "that differ in one property); use a shepard-metzler or rooms store"
        )

    def render_scenes(
        self, seed: int, indices: Sequence[int], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(n, V, H, W, 3)`` uint8, poses ``(n, V, 5)`` float32 of scenes ``indices``."""
        return self.render_specs(
            [self.build_scene(scene_rng(self.name, int(seed), int(i))) for i in indices], device
        )

    def render_mixed(
        self, seed: int, pairs: Sequence[tuple[int, int]], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames and poses (as :meth:`render_scenes`) of :meth:`mixed_scene` for each
        ``(base, other)`` pair of scene indices of dataset ``seed``."""
        specs = [
            self.mixed_scene(*(scene_rng(self.name, int(seed), int(k)) for k in pair))
            for pair in pairs
        ]
        return self.render_specs(specs, device)

    def render_specs(
        self, specs: Sequence[SceneSpec], device=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(n, V, H, W, 3)`` uint8, poses ``(n, V, 5)`` float32 of the scenes ``specs``."""
        if not specs:
            s, v = self.image_size, self.views_per_scene
            return np.zeros((0, v, s, s, 3), np.uint8), np.zeros((0, v, 5), np.float32)
        slots = self.slots()
        if slots is None:
            slots = max(len(s.builder.rows) for s in specs)
        prims = stack_scenes([s.builder for s in specs], slots=slots)
        poses = torch.from_numpy(np.stack([s.poses for s in specs]).astype(np.float32))
        light = torch.from_numpy(np.stack([s.light for s in specs]).astype(np.float32))
        textures = _stack_textures(specs, prims.texture)
        frames = render(prims, poses, light, self.render_settings(), textures, device=device)
        return frames.cpu().numpy(), poses.numpy()


def _stack_textures(specs: list[SceneSpec], texture_ids: torch.Tensor) -> torch.Tensor | None:
    """One texture stack ``(sum k, 6, h, w, 3)`` for the batch; shifts each scene's texture ids
    ``(B, P)`` (in place) past the textures of the scenes before it. None: no scene has any."""
    own = [s.textures for s in specs]
    if all(t is None for t in own):
        return None
    offset = 0
    for i, t in enumerate(own):
        if t is not None:
            texture_ids[i] = torch.where(texture_ids[i] >= 0, texture_ids[i] + offset, NO_TEXTURE)
            offset += len(t)
    return torch.from_numpy(np.concatenate([t for t in own if t is not None]).astype(np.float32))
