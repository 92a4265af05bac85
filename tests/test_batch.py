import pytest
import torch

from gqn.batch import QueryBatch


@pytest.mark.parametrize("n", [1, 3])
def test_valid_batch_and_to(n):
    b = QueryBatch.full_context(
        torch.rand(2, 3, 3, 8, 8),
        torch.rand(2, 3, 7),
        torch.rand(2, n, 3, 8, 8),
        torch.rand(2, n, 7),
    )
    assert b.num_scenes == 2 and b.num_targets == n
    assert b.context_mask.all() and b.target_mask.all() and b.target_mask.shape == (2, n)
    assert b.to("cpu").target_images.shape == (2, n, 3, 8, 8)


def test_viewpoints_of_any_size():
    b = QueryBatch.full_context(
        torch.rand(2, 1, 3, 8, 8),
        torch.rand(2, 1, 3),
        torch.rand(2, 2, 3, 8, 8),
        torch.rand(2, 2, 3),
    )
    assert b.target_viewpoints.shape[-1] == 3


@pytest.mark.parametrize(
    "name,tensor,match",
    [
        ("context_images", torch.rand(2, 3, 3, 8, 9), "context_images"),
        ("context_viewpoints", torch.rand(2, 3, 5), "context_viewpoints"),
        ("context_mask", torch.ones(2, 3), "context_mask"),
        ("target_images", torch.rand(2, 3, 8, 8), "target_images"),
        ("target_viewpoints", torch.rand(2, 7), "target_viewpoints"),
        ("target_mask", torch.ones(2, 2, dtype=torch.bool), "target_mask"),
    ],
)
def test_shape_errors_name_the_tensor(name, tensor, match):
    parts = dict(
        context_images=torch.rand(2, 3, 3, 8, 8),
        context_viewpoints=torch.rand(2, 3, 7),
        context_mask=torch.ones(2, 3, dtype=torch.bool),
        target_images=torch.rand(2, 1, 3, 8, 8),
        target_viewpoints=torch.rand(2, 1, 7),
        target_mask=torch.ones(2, 1, dtype=torch.bool),
    )
    parts[name] = tensor
    with pytest.raises(ValueError, match=match):
        QueryBatch(**parts)
