"""The networks' architectures, pinned on micro networks: the representation networks (Eslami et
al. 2018, fig. S1) layer by layer and their aggregation (eq 4.4), the ConvLSTM cell and the
Gaussian heads. Part of the mutation-testing selection with tests/test_equations.py
(docs/testing.md)."""

import pytest
import torch
import torch.nn.functional as F
from conftest import micro, scenes
from torch import nn

from gqn.models import GQNConfig
from gqn.models.convlstm import ConvLSTMCell
from gqn.models.draw import ConditionalDRAW
from gqn.models.heads import MIN_STD, GaussianHead
from gqn.models.rays import RayMap
from gqn.models.representation import aggregate, make_representation

RAYS = RayMap("rays")  # 7 + 6 = 13 viewpoint channels, unlike the default's 7


def layers(net: nn.Module) -> list[tuple]:
    """(in, out, kernel, stride, padding) of every convolution, in the order they are built."""
    return [
        (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding)
        for c in net.modules()
        if isinstance(c, nn.Conv2d)
    ]


def test_tower_layers_are_the_papers():
    # fig. S1: k2s2 -> c; residual block (k2s2 skip | k3 -> c/2, k2s2 -> c); v concatenated;
    # residual block (k3 skip | k3 -> c/2, k3 -> c); k1 -> c. c = 8, 2 image channels, p = 13.
    net = make_representation("tower", 16, image_channels=2, r_channels=8, pose_map=RAYS)
    k1, k2, k3 = (1, 1), (2, 2), (3, 3)
    one, two, none, same = (1, 1), (2, 2), (0, 0), (1, 1)
    assert layers(net) == [
        (2, 8, k2, two, none),  # conv1
        (8, 8, k2, two, none),  # skip1
        (8, 4, k3, one, same),  # conv2
        (4, 8, k2, two, none),  # conv3
        (8 + 13, 8, k3, one, same),  # skip2
        (8 + 13, 4, k3, one, same),  # conv4
        (4, 8, k3, one, same),  # conv5
        (8, 8, k1, one, none),  # conv6
    ]
    assert net.output_size == 4 and net.r_channels == 8
    pool = make_representation("pool", 16, image_channels=2, r_channels=8, pose_map=RAYS)
    assert layers(pool) == layers(net) and pool.output_size == 1


def test_pyramid_layers_are_the_papers():
    # fig. S1: [x, v] -> k2s2 32 -> k2s2 64 -> k2s2 128 -> k(s/8)s(s/8) c, here s = 32, c = 4.
    net = make_representation("pyramid", 32, image_channels=2, r_channels=4, pose_map=RAYS)
    two, four, none = (2, 2), (4, 4), (0, 0)
    assert layers(net) == [
        (2 + 13, 32, two, two, none),
        (32, 64, two, two, none),
        (64, 128, two, two, none),
        (128, 4, four, four, none),
    ]
    assert net.output_size == 1 and net.r_channels == 4


def test_representation_defaults_are_the_papers():
    # 3-channel images, r with 256 channels, v broadcast (7 channels for camera poses)
    tower, pyramid = make_representation("tower", 64), make_representation("pyramid", 64)
    assert tower.r_channels == pyramid.r_channels == 256
    assert layers(tower)[0][:2] == (3, 256) and layers(tower)[4][0] == 256 + 7
    assert layers(pyramid)[0][0] == 3 + 7 and layers(pyramid)[-1][1:3] == (256, (8, 8))


def test_tower_has_two_residual_blocks():
    # rectangular images (8 x 16): the viewpoint is broadcast over the feature map's own grid
    torch.manual_seed(0)
    net = make_representation("tower", 8, r_channels=4)
    x, v = torch.rand(2, 3, 8, 16), torch.randn(2, 7)
    relu = F.relu
    h = relu(net.conv1(x))
    h = relu(net.conv3(relu(net.conv2(h)))) + relu(net.skip1(h))
    h = torch.cat([h, v[:, :, None, None].expand(-1, -1, 2, 4)], 1)
    h = relu(net.conv5(relu(net.conv4(h)))) + relu(net.skip2(h))
    torch.testing.assert_close(net(x, v), relu(net.conv6(h)))
    pool = make_representation("pool", 8, r_channels=4)
    pool.load_state_dict(net.state_dict())
    torch.testing.assert_close(pool(x, v), net(x, v).mean((2, 3), keepdim=True))


def test_pyramid_is_four_strided_convolutions_on_the_broadcast_viewpoint():
    torch.manual_seed(0)
    net = make_representation("pyramid", 16, r_channels=4)
    x, v = torch.rand(2, 3, 16, 32), torch.randn(2, 7)  # rectangular, as for the tower
    h = torch.cat([x, v[:, :, None, None].expand(-1, -1, 16, 32)], 1)
    for conv in net.convs:
        h = F.relu(conv(h))
    torch.testing.assert_close(net(x, v), h)
    assert net(x, v).shape == (2, 4, 1, 2)


def views(b: int, k: int, dtype=torch.float32, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x, v = torch.rand(b, k, 3, 8, 8, generator=g), torch.randn(b, k, 7, generator=g)
    return x.to(dtype), v.to(dtype)


@pytest.mark.parametrize("name", ["tower", "pyramid"])
def test_aggregate_of_no_views_is_zero(name):
    torch.manual_seed(0)
    net = make_representation(name, 8, r_channels=4)
    x, v = views(3, 0)
    for reduction in ("sum", "mean"):
        r = aggregate(net, x, v, torch.ones(3, 0, dtype=torch.bool), reduction)
        size = 2 if name == "tower" else 1
        assert torch.equal(r, torch.zeros(3, 4, size, size))


def test_aggregate_sums_by_default_and_one_view_is_its_r_k():
    torch.manual_seed(0)
    net = make_representation("tower", 8, r_channels=4)
    x, v = views(2, 3)
    r_k = net(x.flatten(0, 1), v.flatten(0, 1)).unflatten(0, (2, 3))
    mask = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(aggregate(net, x, v, mask), r_k.sum(1))
    one = aggregate(net, x[:, :1], v[:, :1], mask[:, :1])
    torch.testing.assert_close(one, r_k[:, 0])


def test_aggregate_mean_over_each_scenes_unmasked_views_in_rs_precision():
    # fp64: the weights 1/3 are fp64 too (fp32 weights are off by ~3e-8 relative)
    torch.manual_seed(0)
    net = make_representation("tower", 8, r_channels=4).double()
    x, v = views(3, 3, torch.float64)
    r_k = net(x.flatten(0, 1), v.flatten(0, 1)).unflatten(0, (3, 3))
    mask = torch.tensor([[True, True, True], [False, True, False], [False, False, False]])
    r = aggregate(net, x, v, mask, "mean")
    assert r.dtype == torch.float64
    exact = dict(rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(r[0], r_k[0].mean(0), **exact)
    torch.testing.assert_close(r[1], r_k[1, 1], **exact)  # one view: its own r_k
    assert torch.equal(r[2], torch.zeros_like(r[2]))  # no view: 0, not 0/0


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_nan_in_a_masked_context_slot_cannot_reach_r(reduction):
    torch.manual_seed(0)
    net = make_representation("tower", 8, r_channels=4)
    g = torch.Generator().manual_seed(0)
    x, v = torch.rand(2, 3, 3, 8, 8, generator=g), torch.randn(2, 3, 7, generator=g)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    # finite inputs: bit-identical to the former formula sum_k r_k * w_k
    r_k = net(x.flatten(0, 1), v.flatten(0, 1)).unflatten(0, (2, 3))
    w = mask.float()
    if reduction == "mean":
        w = w / w.sum(1, keepdim=True).clamp(min=1)
    assert torch.equal(
        aggregate(net, x, v, mask, reduction), (r_k * w[..., None, None, None]).sum(1)
    )
    # NaN / inf where masked: r and the gradients stay finite, r unchanged
    bad_x, bad_v = x.clone().requires_grad_(), v.clone()
    with torch.no_grad():
        bad_x[0, 1], bad_x[1, 2] = float("nan"), float("inf")
    bad_v[0, 1] = float("nan")
    r = aggregate(net, bad_x, bad_v, mask, reduction)
    torch.testing.assert_close(r, aggregate(net, x, v, mask, reduction), rtol=0, atol=0)
    r.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("size", [4, 12])
def test_image_size_must_be_a_multiple_of_8(size):
    for name in ("tower", "pyramid"):
        with pytest.raises(ValueError, match="divisible by 8"):
            make_representation(name, size)


def test_gaussian_head_mean_then_softplus_std():
    head = GaussianHead(3, 3, kernel_size=5)  # 3 latent channels from 6 outputs
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.bias.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0, -3.0, 0.0]))
    mean, std = head(torch.randn(1, 3, 4, 4))
    assert mean.shape == std.shape == (1, 3, 4, 4)  # "same" padding
    torch.testing.assert_close(mean[0, :, 0, 0], torch.tensor([0.5, -1.0, 0.0]))
    expected = F.softplus(torch.tensor([2.0, -3.0, 0.0])) + MIN_STD
    torch.testing.assert_close(std[0, :, 0, 0], expected)
    assert MIN_STD == 1e-4


@pytest.mark.parametrize("precompute", [True, False])
def test_convlstm_step_equations(precompute):
    # gates (i, f, o, g) = W * [constant, input, h] + b ("same" padding: 2 for kernel 5);
    # c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(c'). 5 hidden channels: 20 gate channels.
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 5, kernel_size=5, precompute_constant=precompute)
    g = torch.Generator().manual_seed(1)
    const, step = torch.randn(2, 2, 6, 6, generator=g), torch.randn(2, 3, 6, 6, generator=g)
    c, h = torch.randn(2, 5, 6, 6, generator=g), torch.randn(2, 5, 6, 6, generator=g)
    c2, h2 = cell(cell.prepare(const), [step], (c, h))
    gates = F.conv2d(torch.cat([const, step, h], 1), cell.gates.weight, cell.gates.bias, padding=2)
    i, f, o, cand = gates.chunk(4, 1)
    expected_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
    torch.testing.assert_close(c2, expected_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h2, torch.sigmoid(o) * torch.tanh(expected_c), rtol=1e-5, atol=1e-5)


def test_convlstm_fast_path_by_default_and_a_channels_last_weight_stays_channels_last():
    const = torch.randn(1, 2, 4, 4)
    assert ConvLSTMCell(2, 3, 5, 3).prepare(const)[1].is_contiguous()  # the fast path
    assert ConvLSTMCell(2, 3, 5, 3, precompute_constant=False).prepare(const)[1] is None
    cell = ConvLSTMCell(2, 3, 5, 3).to(memory_format=torch.channels_last)
    step_weight = cell.prepare(const.contiguous(memory_format=torch.channels_last))[1]
    assert step_weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("core_weights", ["shared", "per_step"])
def test_core_weights_and_kernel_sizes(core_weights):
    model = micro(core_weights=core_weights, num_steps=3, kernel_size=5)
    copies = 1 if core_weights == "shared" else 3
    draw = model.draw
    assert len(draw.generator_steps) == len(draw.inference_steps) == copies
    for step in [*draw.generator_steps, *draw.inference_steps]:
        assert step.core.gates.kernel_size == (5, 5)
        head = step.prior if hasattr(step, "prior") else step.posterior
        assert head.conv.kernel_size == (5, 5)


@pytest.mark.parametrize("precompute", [True, False])
def test_precompute_constant_inputs_reaches_every_core(precompute):
    model = micro(core_weights="per_step", precompute_constant_inputs=precompute)
    cells = [m for m in model.modules() if isinstance(m, ConvLSTMCell)]
    assert len(cells) == 4  # 2 steps x (generator, inference)
    for cell in cells:
        _, step_weight = cell.prepare(torch.zeros(1, cell.const_channels, 2, 2))
        assert (step_weight is not None) == precompute  # the fast path, or the reference


def test_config_bounds():
    for bad in (dict(image_size=50), dict(image_size=4), dict(num_steps=0), dict(kernel_size=4)):
        with pytest.raises(ValueError):
            GQNConfig(**bad)
    with pytest.raises(ValueError, match="fov_deg"):
        GQNConfig(fov_deg=180.0)
    with pytest.raises(ValueError, match="camera viewpoints"):
        GQNConfig(pose_encoding="rays", viewpoint_dim=3)
    GQNConfig(num_steps=1, latent_channels=1, kernel_size=1, image_size=8)


def test_the_configs_viewpoint_map_and_aggregation_reach_the_model():
    batch = scenes()
    x, v, v_q = batch.context_images, batch.context_viewpoints, batch.target_viewpoints[:, 0]
    rays = micro(pose_encoding="rays", fov_deg=60.0)
    cond = rays.condition(rays.represent(x, v), v_q)
    assert torch.equal(cond[:, :13], RayMap("rays", 60.0)(v_q, 2, 2))
    three = micro(viewpoint_dim=3)  # e.g. timestamps: d = 3, broadcast
    cond = three.condition(three.represent(x, v[..., :3]), v_q[:, :3])
    assert torch.equal(cond[:, :3], v_q[:, :3, None, None].expand(2, 3, 2, 2))
    summed, averaged = micro(), micro(aggregation="mean")  # same weights (seed 0)
    torch.testing.assert_close(averaged.represent(x, v), summed.represent(x, v) / 2)


def test_a_draw_layer_without_an_observation_head_has_no_parameters_for_one():
    # a multi-scale layer that only updates the canvas: no unused parameters (DDP)
    sizes = dict(cond_channels=3, image_channels=3, latent_channels=2, hidden_channels=4)
    kwargs = dict(num_steps=1, canvas_channels=4, kernel_size=3, core_weights="shared")
    layer = ConditionalDRAW(**sizes, **kwargs, precompute_constant=True, observation=False)
    assert layer.observation is None
    assert ConditionalDRAW(**sizes, **kwargs, precompute_constant=True).observation is not None
