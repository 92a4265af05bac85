"""Ray intersections in unit object space, dense over rays x primitive slots.

Rays are given per component (``ox, oy, oz, dx, dy, dz``), each broadcastable to ``(n, R, P)``
(images, rays per image, primitive slots). Directions need not be unit length: the ray parameter
``t`` is preserved by the affine map to object space, so ``t`` is the world distance along the
unit world direction. Misses give ``+inf``. Only elementwise ops are used (no data-dependent
control flow), so the functions trace cleanly under ``torch.compile`` and every ray's result is
independent of the others.
"""

from __future__ import annotations

import torch

INF = float("inf")


def box_hit(ox, oy, oz, dx, dy, dz, eps: float) -> torch.Tensor:
    """Slab test against ``[-1, 1]^3`` -> nearest ``t > eps`` ``(n, R, P)`` or inf."""
    near, far = None, None
    for o, d in ((ox, dx), (oy, dy), (oz, dz)):
        inv = 1.0 / d
        t1 = (-1.0 - o) * inv
        t2 = (1.0 - o) * inv
        lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
        near = lo if near is None else torch.maximum(near, lo)
        far = hi if far is None else torch.minimum(far, hi)
    t = torch.where(near > eps, near, far)
    return torch.where((far >= near) & (far > eps), t, INF)


def quadric_hit(ox, oy, oz, dx, dy, dz, coeffs, eps: float) -> torch.Tensor:
    """Capped quadric ``x^2 + y^2 + a z^2 + b z + c = 0``, ``|z| <= 1`` -> ``t`` ``(n, R, P)``.

    ``coeffs`` is a tuple ``(a, b, c, r2_bottom, r2_top)`` of tensors broadcastable to
    ``(n, R, P)``; the caps are the discs ``z = -1`` / ``z = +1`` of squared radius ``r2_*``
    (negative: no cap).
    """
    a, b, c, r2_bottom, r2_top = coeffs
    adz = a * dz
    qa = dx * dx + dy * dy + adz * dz
    half_b = ox * dx + oy * dy + adz * oz + 0.5 * b * dz
    qc = ox * ox + oy * oy + (a * oz + b) * oz + c
    disc = half_b * half_b - qa * qc
    solvable = (disc >= 0) & (qa.abs() >= 1e-12)
    root = torch.sqrt(torch.clamp(disc, min=0.0))
    inv_a = 1.0 / torch.where(solvable, qa, 1.0)
    best = None
    for t in ((-half_b - root) * inv_a, (-half_b + root) * inv_a):
        ok = solvable & (t > eps) & ((oz + t * dz).abs() <= 1.0)
        cand = torch.where(ok, t, INF)
        best = cand if best is None else torch.minimum(best, cand)
    inv_dz = 1.0 / dz
    for level, r2 in ((-1.0, r2_bottom), (1.0, r2_top)):
        t = (level - oz) * inv_dz
        x, y = ox + t * dx, oy + t * dy
        ok = (t > eps) & (x * x + y * y <= r2)
        best = torch.minimum(best, torch.where(ok, t, INF))
    return best


def box_normal(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-space hit points ``(..., 3)`` on the cube -> (normals ``(..., 3)``, face ``(...)``).

    The face id is ``2 * axis + (coordinate > 0)``: 0/1 = -x/+x, 2/3 = -y/+y, 4/5 = -z/+z.
    """
    axis = p.abs().argmax(dim=-1)
    coord = torch.gather(p, -1, axis[..., None])[..., 0]
    positive = coord > 0
    onehot = torch.nn.functional.one_hot(axis, 3).to(p.dtype)
    normal = onehot * torch.where(positive, 1.0, -1.0)[..., None]
    return normal, 2 * axis + positive.long()


def box_uv(p: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Face texture coordinates ``(..., 2)`` in ``[0, 1]`` (u right, v down) of cube points."""
    axis = face // 2
    u_src = torch.where(axis == 0, p[..., 1], p[..., 0])
    v_src = torch.where(axis == 2, p[..., 1], p[..., 2])
    flip = torch.where((face % 2) == 1, 1.0, -1.0)
    flip = torch.where(axis == 1, -flip, flip)
    u = (flip * u_src + 1.0) / 2.0
    v = (1.0 - v_src) / 2.0
    return torch.stack([u, v], dim=-1).clamp(0.0, 1.0)


def quadric_normal(p: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Unit-space normals ``(..., 3)`` of capped quadrics at points ``p (..., 3)``.

    ``coeffs (..., 5)`` as in :func:`quadric_hit`; points within 1e-4 of a present cap get the
    cap's normal, all others the gradient ``(2x, 2y, 2az + b)``.
    """
    x, y, z = p.unbind(-1)
    a, b, _, r2_bottom, r2_top = coeffs.unbind(-1)
    grad = torch.stack([2 * x, 2 * y, 2 * a * z + b], dim=-1)
    zeros = torch.zeros_like(z)
    top = (z > 1.0 - 1e-4) & (r2_top > 0)
    bottom = (z < -1.0 + 1e-4) & (r2_bottom > 0)
    cap = torch.stack([zeros, zeros, torch.where(top, 1.0, -1.0)], dim=-1)
    return torch.where((top | bottom)[..., None], cap, grad)
