import pytest
import torch

from gqn.batch import QueryBatch
from gqn.models import GQN, GQNConfig

# One torch thread per test process: results never depend on the machine's load (training's
# threads=auto picks at most the current count; see gqn.train.pace).
torch.set_num_threads(1)


def tiny_config(**overrides) -> GQNConfig:
    """A GQN small enough for CPU tests in milliseconds per step."""
    base = dict(
        image_size=32,
        r_channels=32,
        hidden_channels=16,
        canvas_channels=16,
        latent_channels=3,
        num_steps=3,
    )
    base.update(overrides)
    return GQNConfig(**base)


def random_batch(b=2, k=3, size=32, seed=0, n=1) -> QueryBatch:
    g = torch.Generator().manual_seed(seed)
    return QueryBatch.full_context(
        torch.rand(b, k, 3, size, size, generator=g),
        torch.randn(b, k, 7, generator=g),
        torch.rand(b, n, 3, size, size, generator=g),
        torch.randn(b, n, 7, generator=g),
    )


@pytest.fixture
def tiny_model() -> GQN:
    torch.manual_seed(0)
    return GQN(tiny_config())


def micro(**overrides) -> GQN:
    """A micro GQN (8x8 images, 2 DRAW steps, 4 channels) for the equation tests that mutation
    testing runs for every mutant (docs/testing.md)."""
    base = dict(
        image_size=8,
        r_channels=4,
        hidden_channels=4,
        canvas_channels=4,
        latent_channels=2,
        num_steps=2,
        kernel_size=3,
    )
    base.update(overrides)
    torch.manual_seed(0)
    model = GQN(GQNConfig(**base))
    with torch.no_grad():  # centre the untrained means in [0, 1] so clamping hides nothing
        model.draw.observation.conv.bias.fill_(0.5)
    return model


def scenes(b=2, k=2, n=1, seed=0) -> QueryBatch:
    """b random 8x8 scenes with k context views and n targets, for :func:`micro`."""
    g = torch.Generator().manual_seed(seed)
    return QueryBatch.full_context(
        torch.rand(b, k, 3, 8, 8, generator=g),
        torch.randn(b, k, 7, generator=g),
        torch.rand(b, n, 3, 8, 8, generator=g),
        torch.randn(b, n, 7, generator=g),
    )


def spread(model: GQN) -> GQN:
    """Means spread well beyond [0, 1], so that clamping shows."""
    with torch.no_grad():
        model.draw.observation.conv.weight.mul_(200.0)
    return model
