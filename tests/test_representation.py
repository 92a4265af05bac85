import pytest
import torch

from gqn.models.representation import REPRESENTATIONS, aggregate, make_representation


@pytest.mark.parametrize("name", sorted(REPRESENTATIONS))
@pytest.mark.parametrize("size", [32, 64, 128])
def test_output_shapes_paper_channels(name, size):
    net = make_representation(name, size)
    r = net(torch.rand(2, 3, size, size), torch.randn(2, 7))
    expected = size // 4 if name == "tower" else 1
    assert r.shape == (2, 256, expected, expected)
    assert net.output_size == expected


def test_tower_at_64_is_16x16x256():
    r = make_representation("tower", 64)(torch.rand(1, 3, 64, 64), torch.randn(1, 7))
    assert r.shape == (1, 256, 16, 16)


def _views(b, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, 3, 32, 32, generator=g), torch.randn(b, k, 7, generator=g)


@pytest.mark.parametrize("name", sorted(REPRESENTATIONS))
def test_order_invariant_additive_masked(name):
    torch.manual_seed(0)
    net = make_representation(name, 32, r_channels=32)
    x, v = _views(2, 5)
    ones = torch.ones(2, 5, dtype=torch.bool)
    r = aggregate(net, x, v, ones)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(aggregate(net, x[:, perm], v[:, perm], ones), r)
    r_a = aggregate(net, x[:, :2], v[:, :2], ones[:, :2])
    r_b = aggregate(net, x[:, 2:], v[:, 2:], ones[:, 2:])
    torch.testing.assert_close(r_a + r_b, r)
    mask = ones.clone()
    mask[:, 2:] = False
    torch.testing.assert_close(aggregate(net, x, v, mask), r_a)
    assert r.abs().sum() > 0


def test_scenes_with_different_view_counts_in_one_batch():
    torch.manual_seed(0)
    net = make_representation("pool", 32, r_channels=16)
    x, v = _views(3, 4)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    r = aggregate(net, x, v, mask)
    torch.testing.assert_close(r[1], net(x[1, :1], v[1, :1])[0])
    assert torch.count_nonzero(r[2]) == 0


def test_mean_aggregation_averages_the_unmasked_views_of_each_scene():
    torch.manual_seed(0)
    net = make_representation("tower", 32, r_channels=16)
    x, v = _views(3, 4)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    total = aggregate(net, x, v, mask)
    mean = aggregate(net, x, v, mask, reduction="mean")
    torch.testing.assert_close(mean[0], total[0] / 4)
    torch.testing.assert_close(
        mean[1], (net(x[1, :1], v[1, :1]) + net(x[1, 2:3], v[1, 2:3]))[0] / 2
    )
    assert torch.count_nonzero(mean[2]) == 0  # no view: r = 0, not 0/0
    repeated = aggregate(
        net,
        x[:, :1].expand(3, 5, -1, -1, -1),
        v[:, :1].expand(3, 5, -1),
        torch.ones(3, 5, dtype=torch.bool),
        "mean",
    )
    torch.testing.assert_close(repeated, net(x[:, 0], v[:, 0]))  # the mean does not grow with K
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        aggregate(net, x, v, mask, reduction="max")


def test_zero_context_views_gives_zero_r():
    net = make_representation("tower", 32, r_channels=16)
    x, v = _views(2, 0)
    r = aggregate(net, x, v, torch.ones(2, 0, dtype=torch.bool))
    assert r.shape == (2, 16, 8, 8) and torch.count_nonzero(r) == 0


def test_bad_representation_requests():
    with pytest.raises(ValueError, match="choose one of"):
        make_representation("transformer", 64)
    with pytest.raises(ValueError, match="divisible by 8"):
        make_representation("tower", 60)
