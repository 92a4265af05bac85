"""Multi-scale generators (thesis §4.1.4, §5.2; gqn/models/multiscale.py): models 0-6."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gqn.losses import gaussian_nll
from gqn.models import GQN, MultiScaleGQN
from gqn.models.pyramid import up
from gqn.run_config import load_run_config
from gqn.viz.layers import layer_figure
from tests.test_model_contract import batch_for

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "multiscale"
MODELS = {  # the thesis' models 1-6 (§5.2.1); model 0 is the GQN
    1: dict(canvas="shared", canvas_upsample="bilinear"),
    2: dict(canvas="shared", canvas_upsample="upconv"),
    3: dict(canvas="own", layer_input="image", nll="every"),
    4: dict(canvas="own", layer_input="image", nll="last"),
    5: dict(canvas="own", layer_input="detail", nll="every"),
    6: dict(canvas="own", layer_input="detail", nll="last"),
}


def tiny(model: int, size: int = 16, layers=(1, 1, 2), seed: int = 0, **changes):
    torch.manual_seed(seed)
    if model == 0:
        return GQN(dataclasses.replace(GQN.tiny_config(), image_size=size)).eval()
    config = dataclasses.replace(
        MultiScaleGQN.tiny_config(), image_size=size, layers=layers, **MODELS[model], **changes
    )
    return MultiScaleGQN(config).eval()


def posterior(model, batch, seed: int = 1):
    """The layers' passes, image means and per-layer NLL (m, L) of one seeded posterior pass."""
    torch.manual_seed(seed)
    return model._scored(batch, 0.7, None)


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("number", range(7))
def test_shapes(number, size):
    model = tiny(number, size)
    batch = batch_for(model, n=2)
    terms = model.elbo(batch, 0.7)
    assert terms.mean.shape == (2, 2, 3, size, size) and terms.nll_per_target.shape == (2, 2)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    assert model.generate(r, batch.target_viewpoints, 3).shape == (2, 3, 2, 3, size, size)
    if number:
        assert list(terms.kl_groups) == ["layer0", "layer1", "layer2"]
        assert [g.shape for g in terms.kl_groups.values()] == [(2, 1), (2, 1), (2, 2)]
        images = model.layer_images(batch, posterior=False)
        sizes = [size // 4, size // 2, size, size]
        assert [x.shape for x in images] == [(2, 2, 3, s, s) for s in sizes]


def test_type1_canvas_is_shared_and_handed_over_as_specified():
    batch = batch_for(tiny(1))
    bilinear, upconv = tiny(1), tiny(2)
    for model in (bilinear, upconv):
        passes = posterior(model, batch)[0]
        gen = model.generator
        for i in (1, 2):
            prev = passes[i - 1].draw.canvas
            expected = up(prev) if model is bilinear else gen.canvas_up[i - 1](prev)
            torch.testing.assert_close(passes[i].initial, expected)
    # model 1: bilinear up commutes with the 1x1 head, so the image = b_eta + sum of layers
    passes, mean, _ = posterior(bilinear, batch)
    layers = bilinear.generator.layer_images(passes)
    bias = bilinear.generator.layers[-1].observation.conv.bias[:, None, None]
    torch.testing.assert_close(mean, bias + up(up(layers[0]) + layers[1]) + layers[2])
    # the last hidden state, upsampled by its own transposed conv, is an input of the next layer
    with torch.no_grad():
        bilinear.generator.hidden_up[1].weight.add_(1.0)
    assert not torch.allclose(posterior(bilinear, batch)[1], mean)


def test_type2_canvases_are_own_and_image_is_sum_of_layers():
    model = tiny(4)
    batch = batch_for(model)
    passes, mean, _ = posterior(model, batch)
    assert all(p.initial is None for p in passes)  # every layer starts from a zero canvas
    own = model.generator.layer_images(passes)
    torch.testing.assert_close(mean, up(up(own[0])) + up(own[1]) + own[2])
    # the previous final canvas is an input of the next layer: changing its upconv changes it
    with torch.no_grad():
        model.generator.canvas_in[1][0].weight.add_(1.0)
    assert not torch.allclose(posterior(model, batch)[1], mean)


def test_detail_inputs_are_exact_high_frequencies():
    model = tiny(5)
    x = torch.rand(2, 3, 16, 16)
    x1 = F.avg_pool2d(x, 2)  # bilinear halving = the 2x2 mean
    x0 = F.avg_pool2d(x1, 2)
    y = model.layer_inputs(x)
    torch.testing.assert_close(y[0], x0)
    torch.testing.assert_close(y[1], x1 - up(x0))
    torch.testing.assert_close(y[2], x - up(x1))
    plain = tiny(3).layer_inputs(x)
    torch.testing.assert_close(plain[1], x1)


@pytest.mark.parametrize("number", [2, 3, 4, 5])
def test_nll_of_last_or_every_layer(number):
    model = tiny(number)
    batch = batch_for(model)
    passes, mean, layer_nll = posterior(model, batch)
    torch.manual_seed(1)
    terms = model.elbo(batch, 0.7)
    images = batch.target_images.flatten(0, 1)
    torch.testing.assert_close(layer_nll[:, -1], gaussian_nll(images, mean, 0.7))
    if model.config.canvas == "own":  # layer 1 scores its own input under its own image
        own = model.generator.layer_images(passes)[1]
        torch.testing.assert_close(
            layer_nll[:, 1], gaussian_nll(model.layer_inputs(images)[1], own, 0.7)
        )
    expected = layer_nll.sum(1) if model.config.nll == "every" else layer_nll[:, -1]
    torch.testing.assert_close(terms.nll, expected)
    assert (model.config.nll == "every") == (number in (3, 5))


@pytest.mark.parametrize("number", [2, 5])
def test_kl_groups_are_the_layers_and_sum_to_total(number):
    model = tiny(number)
    batch = batch_for(model)
    passes = posterior(model, batch)[0]
    torch.manual_seed(1)
    terms = model.elbo(batch, 0.7)
    for i, p in enumerate(passes):
        torch.testing.assert_close(terms.kl_groups[f"layer{i}"], p.draw.kl_per_step)
    total = sum(p.draw.kl_per_step.sum(1) for p in passes)
    torch.testing.assert_close(terms.kl, total)
    assert all((g > 0).all() for g in terms.kl_groups.values())


@pytest.mark.parametrize("number", [2, 6])
def test_fast_path_equals_reference(number):
    fast = tiny(number)
    slow = tiny(number, precompute_constant_inputs=False)
    slow.load_state_dict(fast.state_dict())
    batch = batch_for(fast)
    for a, b in zip(posterior(fast, batch)[0], posterior(slow, batch)[0], strict=True):
        torch.testing.assert_close(a.draw.canvas, b.draw.canvas)
        torch.testing.assert_close(a.draw.kl_per_step, b.draw.kl_per_step)


def test_layers_see_r_halved_bilinearly():
    model = tiny(2)
    r = torch.randn(2, 8, 4, 4)
    conds = model.conditions(r, torch.randn(2, model.viewpoint_dim))
    torch.testing.assert_close(conds[1][:, -8:], F.avg_pool2d(r, 2))
    torch.testing.assert_close(conds[0][:, -8:], F.avg_pool2d(r, 4))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(layers=(2, 0, 6)), "model.layers"),
        (dict(layers=()), "model.layers"),
        (dict(image_size=16, layers=(1, 1, 1, 1)), "does not divide"),
        (dict(image_size=40, layers=(1, 1, 1)), "does not divide"),
        (dict(canvas="own", canvas_upsample="bilinear"), "canvas_upsample"),
        (dict(layer_input="detail"), "layer_input"),
    ],
)
def test_invalid_layers_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(MultiScaleGQN.tiny_config(), **changes)


def test_configs_are_the_thesis_models():
    for number in range(7):
        for name in (f"model{number}.yaml", f"cpu/model{number}.yaml"):
            model = load_run_config(CONFIGS / name).model
            if number == 0:
                assert model.name == "gqn" and model.num_steps == 12
                continue
            assert model.name == "multiscale" and model.num_steps == 12
            assert {k: getattr(model, k) for k in MODELS[number]} == MODELS[number]
    paper = load_run_config(CONFIGS / "model2.yaml")
    assert paper.model.layers == (2, 4, 6) and paper.model.latent_channels == 16
    assert paper.data.batch_size == 24
    assert load_run_config(CONFIGS / "model3.yaml").data.batch_size == 20


def test_layer_figure_rescales_each_row():
    rows = [torch.full((2, 3, 4, 4), -0.5), torch.rand(2, 3, 8, 8) * 3, torch.rand(2, 3, 8, 8)]
    rows[0][0, 0, 0, 0] = 0.25
    image, ranges = layer_figure(torch.rand(2, 3, 8, 8), rows, scale=1)
    assert ranges[0] == pytest.approx((-0.5, 0.25))
    assert image.size[1] >= 4 * 8
