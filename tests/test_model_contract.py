"""The contract every registered scene model keeps (docs/architecture.md): a model added with
``@register_model`` and a ``tiny_config()`` gets these tests for free."""

from __future__ import annotations

import pytest
import torch

from gqn.batch import QueryBatch
from gqn.models.loading import load_model
from gqn.models.registry import MODELS, build_model
from gqn.run_config import RunConfig
from gqn.train.checkpoint import checkpoint_path, save_checkpoint

NAMES = sorted(MODELS)


def tiny(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(name, MODELS[name].tiny_config())
    with torch.no_grad():  # centre the untrained outputs in [0, 1] so clamping hides nothing
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.out_channels == 3:
                module.bias.fill_(0.5)
    return model.eval()


def batch_for(model, b: int = 2, k: int = 2, n: int = 1, seed: int = 0) -> QueryBatch:
    g = torch.Generator().manual_seed(seed)
    c, s, d = 3, model.image_size, model.viewpoint_dim
    return QueryBatch.full_context(
        torch.rand(b, k, c, s, s, generator=g),
        torch.randn(b, k, d, generator=g),
        torch.rand(b, n, c, s, s, generator=g),
        torch.randn(b, n, d, generator=g),
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 3])
def test_shapes(name, n):
    model = tiny(name)
    batch = batch_for(model, n=n)
    s = model.image_size
    terms = model.elbo(batch, 0.7)
    assert terms.nll_per_target.shape == (2, n) and terms.nll.shape == (2,)
    assert terms.kl.shape == (2,) and all(g.shape[0] == 2 for g in terms.kl_groups.values())
    assert terms.mean.shape == (2, n, 3, s, s) and terms.loss.dim() == 0
    assert model.reconstruct(batch).shape == (2, n, 3, s, s)
    r = model.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
    means, samples = model.generate(r, batch.target_viewpoints, 4, return_sample=True, sigma=0.5)
    assert means.shape == samples.shape == (2, 4, n, 3, s, s)
    assert means.min() >= 0 and means.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_masked_targets_cost_nothing(name):
    model = tiny(name)
    batch = batch_for(model, n=3)
    batch.target_mask[:, 2] = False
    torch.manual_seed(1)
    terms = model.elbo(batch, 0.7)
    torch.testing.assert_close(terms.nll, terms.nll_per_target[:, :2].sum(1))


@pytest.mark.parametrize("name", NAMES)
def test_seeded_determinism(name):
    model = tiny(name)
    batch = batch_for(model, n=2)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        loss = model.elbo(batch, 0.7).loss
        images = model.generate(r, batch.target_viewpoints, 2, torch.Generator().manual_seed(seed))
        runs.append((loss, images))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])


@pytest.mark.parametrize("name", NAMES)
def test_elbo_with_given_r_equals_elbo(name):
    model = tiny(name)
    batch = batch_for(model, n=2)
    torch.manual_seed(5)
    own = model.elbo(batch, 0.7)
    r = model.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
    torch.manual_seed(5)
    given = model.elbo(batch, 0.7, r=r)
    assert torch.equal(own.nll_per_target, given.nll_per_target)
    assert torch.equal(own.kl, given.kl)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_through_the_registry(name, tmp_path):
    model = tiny(name, seed=7)
    config = RunConfig(model=model.config)
    path = checkpoint_path(tmp_path, 1)
    save_checkpoint(
        path,
        {
            "config": {"model": vars(model.config)},
            "model": model.state_dict(),
            "step": 1,
            "model_class": type(model).__name__,
        },
    )
    loaded, loaded_config = load_model(tmp_path)
    assert type(loaded) is type(model) and loaded_config.model == config.model
    batch = batch_for(model)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    a = model.generate(r, batch.target_viewpoints, 2, torch.Generator().manual_seed(0))
    b = loaded.generate(r, batch.target_viewpoints, 2, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_generate_views_share_the_latent_only_in_a_consistent_model(name):
    """[v, v] for n = 2: one draw of a scene latent renders the same image twice; independent
    draws render two different ones. S samples always differ."""
    model = tiny(name)
    batch = batch_for(model, b=1)
    r = model.represent(batch.context_images, batch.context_viewpoints)
    v = batch.target_viewpoints[:, :1]
    images = model.generate(r, v.expand(1, 2, -1), 3, torch.Generator().manual_seed(0))
    same_view_same_image = torch.equal(images[:, :, 0], images[:, :, 1])
    assert same_view_same_image == model.consistent
    assert not torch.equal(images[:, 0], images[:, 1])
