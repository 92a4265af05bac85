import math

import pytest
import torch

from gqn.viewpoint import (
    look_at_origin,
    look_direction,
    pose_to_viewpoint,
    viewpoint_to_pose,
)


def test_viewpoint_order_is_cos_then_sin():
    pose = torch.tensor([1.0, 2.0, 3.0, 0.3, -0.2])
    v = pose_to_viewpoint(pose)
    expected = [1, 2, 3, math.cos(0.3), math.sin(0.3), math.cos(-0.2), math.sin(-0.2)]
    torch.testing.assert_close(v, torch.tensor(expected))


def test_round_trip_batched():
    g = torch.Generator().manual_seed(0)
    pose = torch.rand(4, 6, 5, generator=g) * 2 - 1
    pose[..., 3:] *= math.pi * 0.99
    torch.testing.assert_close(viewpoint_to_pose(pose_to_viewpoint(pose)), pose)


def test_look_at_origin_matches_deepmind_convention_and_direction():
    pos = torch.tensor([[-3.0, 1.0, 0.5], [2.0, -2.0, -1.0]])
    pose = look_at_origin(pos)
    x, y, z = pos.unbind(-1)
    torch.testing.assert_close(pose[:, 3], torch.atan2(y, -x))
    torch.testing.assert_close(pose[:, 4], torch.atan2(-z, torch.sqrt(x * x + y * y)))
    direction = look_direction(pose[:, 3], pose[:, 4])
    torch.testing.assert_close(direction, -pos / pos.norm(dim=-1, keepdim=True))


def test_wrong_last_dimension_is_named():
    with pytest.raises(ValueError, match="pose"):
        pose_to_viewpoint(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="viewpoint"):
        viewpoint_to_pose(torch.zeros(3, 5))
