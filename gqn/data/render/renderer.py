"""Batched ray caster: padded primitives x camera poses -> uint8 RGB images.

One call renders ``B`` scenes x ``V`` views. Images are processed in chunks of a fixed number of
images (padding the last one), so under ``torch.compile`` every chunk has the same static shape.
Per ray: the nearest hit over all primitive slots (dense, masked by validity), Lambert shading
``albedo * (ambient + diffuse * max(0, n . l))`` from a point light, an optional hard-shadow ray
towards the light, nearest-texel lookup on textured box faces, and optional ``k x k``
supersampling averaged down. Every image's pixels depend only on its own scene and pose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gqn.data.render.camera import camera_basis, pixel_offsets, ray_directions
from gqn.data.render.intersect import box_hit, box_normal, box_uv, quadric_hit, quadric_normal
from gqn.data.render.primitives import BOX, QUADRIC_COEFFS, Primitives

log = logging.getLogger(__name__)

EPS = 1e-4


@dataclass(frozen=True)
class RenderSettings:
    """Static render options (they never depend on the scene data).

    ``shadow_casters_from``: slots before this index never block shadow rays (e.g. the walls and
    floor of a room lit from inside, which cannot shadow its convex interior); saves their
    share of the shadow-ray work. ``chunk_elements``: rays x slots per chunk (memory vs speed).
    """

    image_size: int = 64
    fov_deg: float = 45.0
    antialias: int = 1
    shadows: bool = False
    ambient: float = 0.35
    diffuse: float = 0.65
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    compile: bool = False
    chunk_elements: int = 1 << 19
    shadow_casters_from: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.antialias < 1:
            raise ValueError("image_size and antialias must be >= 1")
        if self.shadow_casters_from < 0:
            raise ValueError("shadow_casters_from must be >= 0")
        if not 0 < self.fov_deg < 180:
            raise ValueError(f"fov_deg must be in (0, 180), got {self.fov_deg}")


def _mat_vec(m: torch.Tensor, v: torch.Tensor) -> list[torch.Tensor]:
    """Rows of ``m (..., 3, 3)`` dotted with ``v (..., 3)`` -> three ``(...)`` components.

    Written as explicit products and sums (no BLAS) so results are bitwise independent of the
    batch shape.
    """
    return [
        m[..., j, 0] * v[..., 0] + m[..., j, 1] * v[..., 1] + m[..., j, 2] * v[..., 2]
        for j in range(3)
    ]


def _trace(o, d, kind, valid, coeffs, quad_from: int | None) -> torch.Tensor:
    """Unit-space ray components ``o, d`` (lists of ``(n, R|1, P)``) -> ``t`` ``(n, R, P)``.

    Slots ``>= quad_from`` may hold quadrics (None: none do); earlier slots are boxes only.
    """
    t = box_hit(*o, *d, EPS)
    if quad_from is not None:
        part = [c[..., quad_from:].contiguous() for c in (*o, *d)]
        cq = [c[:, None, quad_from:] for c in coeffs.unbind(-1)]
        tq = quadric_hit(*part, cq, EPS)
        tq = torch.where((kind[:, None, quad_from:] == BOX), t[..., quad_from:], tq)
        t = torch.cat([t[..., :quad_from], tq], dim=-1)
    return torch.where(valid[:, None, :], t, float("inf"))


def _render_chunk(
    cam_pos: torch.Tensor,
    basis: torch.Tensor,
    offsets: torch.Tensor,
    light: torch.Tensor,
    to_unit: torch.Tensor,
    center: torch.Tensor,
    kind: torch.Tensor,
    valid: torch.Tensor,
    coeffs: torch.Tensor,
    color: torch.Tensor,
    texture: torch.Tensor,
    texels: torch.Tensor | None,
    background: torch.Tensor,
    quad_from: int | None,
    shadows: bool,
    casters_from: int,
    ambient: float,
    diffuse: float,
) -> torch.Tensor:
    """Shade ``n`` images of ``R`` rays each -> float RGB ``(n, R, 3)`` in ``[0, 1]``.

    Args: camera positions ``(n, 3)``, bases ``(n, 3, 3)``, pixel offsets ``(R, 3)``, lights
    ``(n, 3)``; per slot ``(n, P, ...)``: world-to-unit matrices ``(3, 3)``, centres ``(3,)``,
    kinds, validity, quadric coefficients ``(5,)``, colours ``(3,)``, texture ids; ``texels``
    ``(T, 6, h, w, 3)`` or None; background ``(3,)``. Static: first slot that may be a
    quadric (None: no quadrics), shadow switch, first slot that casts shadows.

    Rays are not normalised: pixel ray ``d = basis^T (x, y, 1)``, so its unit-space direction is
    ``K (x, y, 1)`` with the per-(image, slot) matrix ``K = to_unit @ basis^T``, two
    multiply-adds per component. The shadow ray of a hit point ``p`` is ``p + s (light - p)``,
    blocked by any hit with ``0 < s < 1``; its unit-space origin and direction follow from the
    primary ray's without another matrix product.
    """
    n, p_slots = kind.shape
    d = ray_directions(basis, offsets)
    o_unit = [c[:, None, :] for c in _mat_vec(to_unit, cam_pos[:, None, :] - center)]
    k = sum(to_unit[:, :, :, None, m] * basis[:, None, None, :, m] for m in range(3))
    x, y = offsets[None, :, 0, None], offsets[None, :, 1, None]
    d_unit = [
        k[:, None, :, j, 0] * x + k[:, None, :, j, 1] * y + k[:, None, :, j, 2] for j in range(3)
    ]
    t_all = _trace(o_unit, d_unit, kind, valid, coeffs, quad_from)
    t_hit, slot = t_all.min(dim=-1)
    hit = torch.isfinite(t_hit)
    t_hit = torch.where(hit, t_hit, 0.0)[..., None]
    point = cam_pos[:, None, :] + t_hit * d
    s_unit = [o + t_hit * dd for o, dd in zip(o_unit, d_unit, strict=True)]

    def per_ray(v: torch.Tensor) -> torch.Tensor:
        flat = v.reshape(n, p_slots, -1)
        return torch.gather(flat, 1, slot[..., None].expand(-1, -1, flat.shape[-1]))

    p_unit = torch.stack([torch.gather(c, 2, slot[..., None])[..., 0] for c in s_unit], -1)
    kind_hit = per_ray(kind)[..., 0]
    n_unit, face = box_normal(p_unit)
    if quad_from is not None:
        qn = quadric_normal(p_unit, per_ray(coeffs))
        n_unit = torch.where((kind_hit == BOX)[..., None], n_unit, qn)
    mat_t = per_ray(to_unit).reshape(n, -1, 3, 3).transpose(-1, -2)
    normal = torch.stack(_mat_vec(mat_t, n_unit), dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    facing = (normal * d).sum(-1, keepdim=True)
    normal = torch.where(facing > 0, -normal, normal)

    albedo = per_ray(color)
    if texels is not None:
        tex_id = per_ray(texture)[..., 0]
        _, _, th, tw, _ = texels.shape
        uv = box_uv(p_unit, face)
        col = (uv[..., 0] * tw).long().clamp(0, tw - 1)
        row = (uv[..., 1] * th).long().clamp(0, th - 1)
        flat_index = ((tex_id.clamp_min(0) * 6 + face) * th + row) * tw + col
        sampled = texels.reshape(-1, 3)[flat_index.reshape(-1)].reshape(n, -1, 3)
        textured = (tex_id >= 0) & (kind_hit == BOX)
        albedo = torch.where(textured[..., None], sampled, albedo)

    to_light = light[:, None, :] - point
    l_dir = to_light / to_light.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    lambert = (normal * l_dir).sum(-1).clamp_min(0.0)
    if shadows:
        c0 = casters_from
        light_unit = _mat_vec(to_unit[:, c0:], light[:, None, :] - center[:, c0:])
        s_cast = [su[..., c0:] for su in s_unit]
        l_unit = [lu[:, None, :] - su for lu, su in zip(light_unit, s_cast, strict=True)]
        q0 = None if quad_from is None else max(quad_from - c0, 0)
        t_shadow = _trace(s_cast, l_unit, kind[:, c0:], valid[:, c0:], coeffs[:, c0:], q0)
        blocked = (t_shadow < 1.0).any(dim=-1)
        lambert = torch.where(blocked, 0.0, lambert)
    rgb = albedo * (ambient + diffuse * lambert)[..., None]
    return torch.where(hit[..., None], rgb, background).clamp(0.0, 1.0)


_COMPILED: dict[bool, object] = {}


def _chunk_fn(compile_: bool):
    if not compile_:
        return _render_chunk
    if True not in _COMPILED:
        log.info("compiling the render kernel (first call per shape takes a while)")
        _COMPILED[True] = torch.compile(_render_chunk, dynamic=False)
    return _COMPILED[True]


def _slot_tables(prims: Primitives) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-unit matrices ``(B, P, 3, 3)`` and quadric coefficients ``(B, P, 5)``."""
    to_unit = prims.rotation.transpose(-1, -2) / prims.size[..., :, None]
    table = torch.tensor(
        [QUADRIC_COEFFS[k] for k in sorted(QUADRIC_COEFFS)],
        dtype=torch.float32,
        device=prims.kind.device,
    )
    return to_unit, table[prims.kind]


def _next_pow2(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


@torch.no_grad()
def render(
    prims: Primitives,
    poses: torch.Tensor,
    light: torch.Tensor,
    settings: RenderSettings,
    textures: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Render ``B`` scenes from ``V`` poses each.

    Args:
        prims: ``B`` scenes of ``P`` primitive slots.
        poses: ``(B, V, 5)`` raw poses ``(x, y, z, yaw, pitch)``, see :mod:`gqn.viewpoint`.
        light: ``(B, 3)`` point-light positions.
        settings: image size, field of view, shading, anti-aliasing, compile switch.
        textures: ``(T, 6, h, w, 3)`` float RGB in ``[0, 1]``, one image per cube face
            (face order -x, +x, -y, +y, -z, +z); primitives refer to them by ``texture``.
        device: where to compute (default CPU); the result is on the same device.

    Returns:
        ``(B, V, S, S, 3)`` uint8 RGB, ``S = settings.image_size``.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    prims = prims.to(device)
    poses = poses.to(device=device, dtype=torch.float32)
    light = light.to(device=device, dtype=torch.float32)
    b, v = poses.shape[:2]
    if prims.num_scenes != b or light.shape != (b, 3):
        raise ValueError(
            f"{prims.num_scenes} scenes, poses {tuple(poses.shape)}, "
            f"light {tuple(light.shape)} disagree"
        )
    aa, size = settings.antialias, settings.image_size
    hi = size * aa
    offsets = pixel_offsets(hi, hi, settings.fov_deg, device=device)
    to_unit, coeffs = _slot_tables(prims)
    live = prims.valid
    quad_cols = torch.nonzero(((prims.kind != BOX) & live).any(0)).flatten()
    quad_from = int(quad_cols[0]) if len(quad_cols) else None
    casters_from = min(settings.shadow_casters_from, prims.num_slots - 1)
    texels = None
    if textures is not None and bool(((prims.texture >= 0) & live).any()):
        texels = textures.to(device=device, dtype=torch.float32)
    background = torch.tensor(settings.background, dtype=torch.float32, device=device)

    n_img = b * v
    scene = torch.arange(b, device=device).repeat_interleave(v)
    flat_pose = poses.reshape(n_img, 5)
    per_chunk = max(1, settings.chunk_elements // (hi * hi * prims.num_slots))
    per_chunk = min(per_chunk, _next_pow2(n_img))
    fn = _chunk_fn(settings.compile)
    out = []
    for start in range(0, n_img, per_chunk):
        idx = torch.arange(start, start + per_chunk, device=device).clamp_max(n_img - 1)
        pose, s = flat_pose[idx], scene[idx]
        rgb = fn(
            pose[:, :3],
            camera_basis(pose[:, 3], pose[:, 4]),
            offsets,
            light[s],
            to_unit[s],
            prims.center[s],
            prims.kind[s],
            live[s],
            coeffs[s],
            prims.color[s],
            prims.texture[s],
            texels,
            background,
            quad_from,
            settings.shadows,
            casters_from,
            float(settings.ambient),
            float(settings.diffuse),
        )
        out.append(rgb[: min(per_chunk, n_img - start)])
    rgb = torch.cat(out).reshape(n_img, hi, hi, 3)
    if aa > 1:
        rgb = F.avg_pool2d(rgb.permute(0, 3, 1, 2), aa).permute(0, 2, 3, 1)
    img = torch.round(rgb * 255.0).to(torch.uint8)
    return img.reshape(b, v, size, size, 3)
