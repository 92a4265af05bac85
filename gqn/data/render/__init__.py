"""Procedural ray caster: padded primitive batches -> uint8 RGB images (pure PyTorch)."""

from gqn.data.render.camera import camera_basis, pixel_offsets, project_points, ray_directions
from gqn.data.render.primitives import (
    BOX,
    CONE,
    CYLINDER,
    NO_TEXTURE,
    SPHERE,
    Primitives,
    SceneBuilder,
    rotation_z,
    stack_scenes,
)
from gqn.data.render.renderer import RenderSettings, render

__all__ = [
    "BOX",
    "CONE",
    "CYLINDER",
    "NO_TEXTURE",
    "SPHERE",
    "Primitives",
    "RenderSettings",
    "SceneBuilder",
    "camera_basis",
    "pixel_offsets",
    "project_points",
    "ray_directions",
    "render",
    "rotation_z",
    "stack_scenes",
]
