"""Shipped weights: export (model-only, fp16), load by ``pretrained:NAME``, clear errors."""

from __future__ import annotations

import pytest
import torch

import gqn
from gqn.cli import main
from gqn.models import GQN
from gqn.models import pretrained as pretrained_lib
from gqn.models.loading import load_checkpoint, load_model
from gqn.run_config import RunConfig
from gqn.train.checkpoint import save_checkpoint
from gqn.typed_config import to_dict


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = RunConfig()
    config.model = GQN.tiny_config()
    model = GQN(config.model)
    state = {"config": to_dict(config), "model": model.state_dict(), "step": 7,
             "model_class": "GQN", "optimizer": {}, "schedules": {}, "rng": {}}  # fmt: skip
    return save_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000007.pt", state), model


def test_export_keeps_the_model_in_fp16_and_loads_by_name(checkpoint, tmp_path, monkeypatch):
    path, model = checkpoint
    monkeypatch.setattr(pretrained_lib, "PRETRAINED_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    assert main(["export", str(path.parents[1]), str(tmp_path / "shipped" / "tiny.pt")]) == 0
    assert pretrained_lib.available() == ["tiny"]
    state = load_checkpoint("pretrained:tiny")
    assert "optimizer" not in state and state["step"] == 7
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    loaded, config = gqn.load_pretrained("tiny")
    assert config.model == model.config
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert b.dtype == a.dtype, name
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    again, _ = load_model("pretrained:tiny")
    assert torch.equal(next(again.parameters()), next(loaded.parameters()))
    with pytest.raises(ValueError, match="cannot be resumed"):
        load_checkpoint("pretrained:tiny", resume=True)


def test_fp32_export_is_exact(checkpoint, tmp_path):
    path, model = checkpoint
    out = pretrained_lib.export_weights(path, tmp_path / "full.pt", fp16=False)
    loaded, _ = load_model(out)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_unknown_name_lists_what_is_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained_lib, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ValueError, match="no pretrained weights 'nope'; shipped: none"):
        load_model("pretrained:nope")
    argv = ["sample", "pretrained:nope", "--data", str(tmp_path), "--scene", "0", "--out", "x"]
    assert main(argv) == 2
    assert "no pretrained weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "batch", "step"),
    # the recipes of docs/pretrained.md
    [
        ("sm-32", 16, 8000),
        ("sm-32-gpu", 64, 6831),
        ("sm-32-projective", 16, 8000),
        ("sm-32-pixels", 16, 8000),
    ],
)
def test_the_shipped_weights_load_and_render(name, batch, step):
    assert name in pretrained_lib.available()
    model, config = gqn.load_pretrained(name)
    assert config.model.image_size == 32 and config.data.batch_size == batch
    assert torch.load(pretrained_lib.pretrained_path(name), weights_only=False)["step"] == step
    b = 2
    r = model.represent(torch.rand(b, 1, 3, 32, 32), torch.randn(b, 1, 7))
    images = model.generate(r, torch.randn(b, 1, 7), num_samples=1)
    assert images.shape == (b, 1, 1, 3, 32, 32) and torch.isfinite(images).all()
