import pytest
import torch

from gqn.batch import QueryBatch


def test_valid_batch_and_to():
    b = QueryBatch.full_context(
        torch.rand(2, 3, 3, 8, 8), torch.rand(2, 3, 7), torch.rand(2, 3, 8, 8), torch.rand(2, 7)
    )
    assert b.num_scenes == 2 and b.context_mask.all()
    assert b.to("cpu").query_image.shape == (2, 3, 8, 8)


@pytest.mark.parametrize(
    "name,tensor,match",
    [
        ("context_images", torch.rand(2, 3, 3, 8, 9), "context_images"),
        ("context_viewpoints", torch.rand(2, 3, 5), "context_viewpoints"),
        ("context_mask", torch.ones(2, 3), "context_mask"),
        ("query_viewpoint", torch.rand(2, 5), "query_viewpoint"),
    ],
)
def test_shape_errors_name_the_tensor(name, tensor, match):
    parts = dict(
        context_images=torch.rand(2, 3, 3, 8, 8),
        context_viewpoints=torch.rand(2, 3, 7),
        context_mask=torch.ones(2, 3, dtype=torch.bool),
        query_image=torch.rand(2, 3, 8, 8),
        query_viewpoint=torch.rand(2, 7),
    )
    parts[name] = tensor
    with pytest.raises(ValueError, match=match):
        QueryBatch(**parts)
