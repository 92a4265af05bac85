"""The projective GQN (gqn/models/projective.py, gqn/models/projection.py): the query rays'
points land where the renderer's cameras see them, the context pixels reach the cells that see
them, the gathered statistics are the per-depth mean / variance / coverage over the views that
see each point, and masked views count for nothing. The model's contract (shapes, checkpoints,
masking of targets) is tests/test_model_contract.py's."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from gqn.batch import QueryBatch
from gqn.data.render.camera import project_points
from gqn.models.projection import pinhole, project_rays
from gqn.models.projective import (
    ProjectiveGQN,
    ProjectiveGQNConfig,
    RayGather,
)
from gqn.models.rays import cell_directions
from gqn.viewpoint import look_at_origin, pose_to_viewpoint


def cameras(positions) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose (n, 5), viewpoint (n, 7)) of cameras at ``positions`` looking at the origin."""
    pose = look_at_origin(torch.tensor(positions, dtype=torch.float32))
    return pose, pose_to_viewpoint(pose)


def test_rays_land_where_the_renderer_projects_their_points():
    """project_rays (per ray, linear in the depth) puts the points o + t dir of the query's
    rays where the renderer's camera projects them."""
    pose, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0], [-2.0, 0.5, -2.5], [1.0, 3.0, 0.3]])
    query, context = v[:2], v[2:].expand(2, 2, 7)
    depths = torch.tensor([2.3, 3.1, 4.4])
    grid, seen = project_rays(query, 4, depths, context, 45.0)
    assert grid.shape == (2, 2, 16, 3, 2)
    directions = cell_directions(query, 4, 4, 45.0)  # (2, 16, 3)
    points = (query[:, None, None, :3] + depths[:, None] * directions[:, :, None]).flatten(1, 2)
    for j in range(2):  # every point lies in front of both context cameras
        pixels = project_points(points, pose[2 + j].expand(2, 1, 5), 32, 45.0) / 16 - 1
        torch.testing.assert_close(grid[:, j].flatten(1, 2), pixels, atol=1e-4, rtol=0)
        assert torch.equal(seen[:, j].flatten(1, 2), pixels.abs().amax(-1) <= 1)
    assert seen.any() and not seen.all()


def test_points_behind_or_beside_the_camera_are_not_seen():
    # camera coordinates (right, up, forward): behind the camera; on the axis; 34 degrees above
    # it (the half-fov is 22.5); the eye
    cam = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 3.0], [0.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    _, seen = pinhole(cam, 45.0)
    assert seen.tolist() == [False, True, False, False]


def test_each_query_pixel_reads_the_context_pixel_on_its_ray():
    """The pixels' path at full resolution: a query at the context camera reads the context
    image itself at every depth."""
    _, v = cameras([[3.0, 1.0, 0.5]])
    images = torch.rand(1, 1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    module = RayGather(4, 4, 3, 2.3, 4.4, 45.0)
    maps = module.depth_maps(images, v[:, None], torch.ones(1, 1, dtype=torch.bool), v, 16)
    assert maps.shape == (1, 7 * 3, 16, 16)  # channel s D + t: statistic s at depth t
    means = maps[:, :9].unflatten(1, (3, 3))  # (1, colour, depth, 16, 16)
    torch.testing.assert_close(
        means, images[:, 0, :, None].expand(-1, -1, 3, -1, -1), atol=1e-5, rtol=0
    )


def test_a_context_pixel_reaches_only_the_cell_that_contains_it():
    """Query at the context camera: changing context pixel (row 1, col 13) of a 16 x 16 image
    changes the pixels' channels of the mixing input at cell (0, 3) only (space-to-depth)."""
    _, v = cameras([[3.0, 1.0, 0.5]])
    module = RayGather(4, 4, 3, 2.3, 4.4, 45.0, pixel_channels=2)
    torch.nn.init.ones_(module.pixels[0].bias)  # no unit of the pixels' path off (ReLU)
    seen = {}
    module.mix.register_forward_hook(lambda mod, inp, out: seen.__setitem__("x", inp[0]))
    features = torch.rand(1, 1, 4, 4, 4)
    images = torch.rand(1, 1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, 1, dtype=torch.bool)
    module(features, v[:, None], mask, v, 4, images)
    before = seen["x"]
    changed = images.clone()
    changed[0, 0, :, 1, 13] += 0.5
    module(features, v[:, None], mask, v, 4, changed)
    diff = (seen["x"] - before).abs().sum(1)  # (1, 4, 4)
    assert (diff > 1e-6).nonzero().tolist() == [[0, 0, 3]]
    with pytest.raises(ValueError, match="pass images"):
        module(features, v[:, None], mask, v, 4)


def test_the_memory_carries_the_unmasked_context_pixels():
    torch.manual_seed(0)
    model = ProjectiveGQN(ProjectiveGQN.tiny_config()).eval()
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0]])
    images = torch.rand(1, 2, 3, 16, 16)
    r = model.represent(images, v[None], torch.tensor([[True, False]]))
    start = model.config.gather_channels * model.hidden_size**2
    pixels = r[..., start : start + model.pixel_width].unflatten(-1, (3, 16, 16))
    assert torch.equal(pixels[0, 0], images[0, 0]) and (pixels[0, 1] == 0).all()
    changed = images.clone()
    changed[0, 0, :, 8, 8] += 0.5  # the centre pixel, seen by the query at the context camera
    r_changed = model.represent(changed, v[None], torch.tensor([[True, False]]))
    r_changed[..., :start] = r[..., :start]  # the tower's features unchanged: the pixels alone
    torch.nn.init.ones_(model.gather.pixels[0].bias)  # no unit of the pixels' path off (ReLU)
    assert not torch.allclose(model.condition(r, v[:1]), model.condition(r_changed, v[:1]))
    off = dataclasses.replace(model.config, pixel_channels=0, pixel_canvas=False)
    assert ProjectiveGQN(off).memory_width == model.memory_width - 3 * 16 * 16


def gather(num_depths: int = 5) -> RayGather:
    return RayGather(4, 4, num_depths, 2.3, 4.4, 45.0)


def test_a_query_at_a_context_camera_reads_that_views_own_cells_at_every_depth():
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0]])
    features = torch.randn(2, 1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    stats = gather().statistics(features, v[:, None], torch.ones(2, 1, dtype=torch.bool), v, 8)
    assert stats.shape == (2, 9, 64, 5)
    torch.testing.assert_close(
        stats[:, :4], features[:, 0].flatten(2)[..., None].expand(-1, -1, -1, 5), atol=1e-5, rtol=0
    )
    assert stats[:, 4:8].abs().max() < 1e-10  # one view: no variance
    assert (stats[:, 8] == 1).all()  # seen by the one view at every depth


def test_statistics_are_the_mean_and_variance_over_the_views_that_see_the_point():
    """Constant feature maps make the sampled value the view's constant wherever it is seen."""
    _, v = cameras([[3.3, 0.0, 0.0], [0.0, 3.3, 0.0], [-3.3, 0.0, 0.0]])
    values = torch.tensor([1.0, 2.0, 6.0])
    features = values[:, None, None, None].expand(3, 4, 8, 8)[None].clone()  # (1, 3, 4, 8, 8)
    mask = torch.tensor([[True, True, False]])
    stats = gather().statistics(features, v[None], mask, v[:1], 8)
    # the query is the first camera: its centre cell sees the origin at the middle depth (3.35),
    # which the second view sees too; the masked third view (value 6) never counts, not even
    # in the fraction of views that see the point
    centre, middle = 3 * 8 + 3, 2
    assert stats[0, 0, centre, middle].item() == pytest.approx(1.5)
    assert stats[0, 4, centre, middle].item() == pytest.approx(0.25)
    assert stats[0, 8, centre, middle].item() == pytest.approx(1.0)


VARIANTS = {  # (pixel_channels, pixel_canvas): the pixels' path off, on, and feeding u_0
    "features": (0, False),
    "pixels": (2, False),
    "pixel-canvas": (2, True),
}


def variant(name: str) -> ProjectiveGQNConfig:
    pixel_channels, pixel_canvas = VARIANTS[name]
    return dataclasses.replace(
        ProjectiveGQN.tiny_config(), pixel_channels=pixel_channels, pixel_canvas=pixel_canvas
    )


def assert_same_conditioning(model, r, other, query) -> None:
    """(cond, u_0) of two context memories are equal (u_0 None for both without the canvas)."""
    (cond, canvas), (cond_other, canvas_other) = (model.conditioning(x, query) for x in (r, other))
    torch.testing.assert_close(cond, cond_other)
    torch.testing.assert_close(canvas, canvas_other)
    assert (canvas is None) == (not model.config.pixel_canvas)


@pytest.mark.parametrize("name", VARIANTS)
def test_masked_views_and_no_views_give_finite_memory_and_conditioning(name):
    torch.manual_seed(0)
    config = variant(name)
    model = ProjectiveGQN(config).eval()
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0], [1.0, 1.0, 3.0]])
    images = torch.rand(1, 3, 3, 16, 16)
    mask = torch.tensor([[True, True, False]])
    r = model.represent(images, v[None], mask)
    poisoned = images.clone()
    poisoned[0, 2] = float("nan")
    r_poisoned = model.represent(poisoned, torch.cat([v[:2], v[2:] * math.inf])[None], mask)
    torch.testing.assert_close(r, r_poisoned)
    query = v[2:]
    assert_same_conditioning(model, r, r_poisoned, query)
    empty = model.represent(images[:, :0], v[None, :0])
    assert empty.shape == (1, 0, model.memory_width)
    for x in model.conditioning(empty, query):
        assert x is None or torch.isfinite(x).all()


def test_the_query_pose_changes_the_conditioning_through_the_context():
    """Two queries with the same pose map but different contexts differ (r^q reads the context),
    and one context read from two poses differs (r^q reads along the query's rays)."""
    torch.manual_seed(0)
    model = ProjectiveGQN(ProjectiveGQN.tiny_config()).eval()
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0]])
    images = torch.rand(2, 1, 3, 16, 16)
    r = model.represent(images, v[:1].expand(2, 1, 7))
    same_pose = model.condition(r, v[1:].expand(2, 7))
    assert not torch.allclose(same_pose[0], same_pose[1])
    pose = model.pose_map.channels  # compare r^q alone, not the query's own pose map
    two_poses = model.condition(r[:1].expand(2, -1, -1), v)[:, pose:]
    assert not torch.allclose(two_poses[0], two_poses[1])


@pytest.mark.parametrize("name", VARIANTS)
def test_a_masked_slot_is_the_same_as_no_slot(name):
    """Padding a scene's context with a masked view leaves its conditioning unchanged (the mask
    bit travels in the memory and every statistic counts the unmasked views only)."""
    torch.manual_seed(0)
    model = ProjectiveGQN(variant(name)).eval()
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0], [1.0, 1.0, 3.0]])
    images = torch.rand(1, 3, 3, 16, 16)
    query = v[2:]
    padded = model.represent(images, v[None], torch.tensor([[True, True, False]]))
    unpadded = model.represent(images[:, :2], v[None, :2])
    assert_same_conditioning(model, padded, unpadded, query)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"representation": "pool"}, "representation"),
        ({"num_depths": 0}, "num_depths"),
        ({"depth_near": 3.0, "depth_far": 2.0}, "depth_near"),
        ({"depth_near": 0.0}, "depth_near"),
        ({"pixel_channels": -1}, "pixel_channels"),
        ({"pixel_channels": 0, "pixel_canvas": True}, "pixel_canvas"),
        ({"viewpoint": "time", "viewpoint_dim": 9}, "camera viewpoints"),
    ],
)
def test_impossible_configs_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        ProjectiveGQNConfig(**change)


def test_the_pixel_canvas_is_each_query_pixels_own_context_colours():
    """u_0 at the context camera: changing context pixel (row 1, col 13) changes u_0 at that
    query pixel only (full resolution, no space-to-depth)."""
    torch.manual_seed(0)
    model = ProjectiveGQN(variant("pixel-canvas")).eval()
    torch.nn.init.ones_(model.gather.pixels[0].bias)  # no unit of the pixels' path off (ReLU)
    _, v = cameras([[3.0, 1.0, 0.5]])
    images = torch.rand(1, 1, 3, 16, 16)
    changed = images.clone()
    changed[0, 0, :, 1, 13] += 0.5
    canvas, canvas_changed = (
        model.conditioning(model.represent(x, v[None]), v)[1] for x in (images, changed)
    )
    assert canvas.shape == (1, model.config.canvas_channels, 16, 16)
    diff = (canvas_changed - canvas).abs().sum(1)
    assert (diff > 1e-6).nonzero().tolist() == [[0, 1, 13]]


def test_every_pass_starts_from_the_pixel_canvas():
    """The posterior (ELBO, reconstruction) and the prior passes start from u_0: with the 1x1
    to u_0 zeroed they are the model without the canvas (u_0 = 0), with a bias they all move."""
    torch.manual_seed(0)
    model = ProjectiveGQN(variant("pixel-canvas")).eval()
    plain = ProjectiveGQN(variant("pixels")).eval()
    torch.nn.init.zeros_(model.to_canvas.weight)
    torch.nn.init.zeros_(model.to_canvas.bias)
    plain.load_state_dict(
        {k: x for k, x in model.state_dict().items() if not k.startswith("to_canvas")}
    )
    _, v = cameras([[3.0, 1.0, 0.5], [0.2, -3.1, 1.0], [1.0, 1.0, 3.0]])
    images = torch.rand(1, 3, 3, 16, 16)
    batch = QueryBatch(
        images[:, :2],
        v[None, :2],
        torch.ones(1, 2, dtype=torch.bool),
        images[:, 2:],
        v[None, 2:],
        torch.ones(1, 1, dtype=torch.bool),
    )

    def passes(m):
        torch.manual_seed(1)
        elbo_mean = m.elbo(batch, 0.5).mean
        torch.manual_seed(1)
        reconstruction = m.reconstruct(batch)
        r = m.represent(batch.context_images, batch.context_viewpoints)
        prior = m.prior_means(r, batch.target_viewpoints, 2, torch.Generator().manual_seed(2))
        return elbo_mean, reconstruction, prior

    for ours, theirs in zip(passes(model), passes(plain), strict=True):
        torch.testing.assert_close(ours, theirs)
    torch.nn.init.constant_(model.to_canvas.bias, 1.0)
    for ours, theirs in zip(passes(model), passes(plain), strict=True):
        assert not torch.allclose(ours, theirs)
