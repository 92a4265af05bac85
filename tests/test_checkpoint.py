"""Checkpoint files: atomic writes, keep-last, latest, clear refusals, a disk that fills up."""

from __future__ import annotations

import errno

import pytest
import torch

from gqn.io import checksum_path
from gqn.models import GQN, GQNConfig, loading
from gqn.run_config import RunConfig
from gqn.train import checkpoint as ck
from gqn.typed_config import to_dict

MODEL = GQNConfig(
    image_size=16,
    representation="pool",
    r_channels=8,
    hidden_channels=8,
    canvas_channels=8,
    num_steps=2,
)


def state(step: int, model_config: GQNConfig = MODEL) -> dict:
    torch.manual_seed(step)
    cfg = RunConfig(model=model_config)
    return {
        "config": to_dict(cfg),
        "model_class": "GQN",
        "model": GQN(model_config).state_dict(),
        "step": step,
        "rng": ck.rng_state(),
    }


def test_save_keeps_last_k_and_finds_latest(tmp_path):
    assert loading.find_latest(tmp_path) is None
    for step in (5, 10, 100, 20):
        ck.save_checkpoint(ck.checkpoint_path(tmp_path, step), state(step), keep_last=2)
    names = [p.name for p in loading.list_checkpoints(tmp_path)]
    assert names == ["step_00000020.pt", "step_00000100.pt"]
    on_disk = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert on_disk == sorted([*names, *(n + ".sha256" for n in names)])  # pruned sidecars too
    assert loading.load_checkpoint(tmp_path)["step"] == 100
    assert loading.load_checkpoint(tmp_path / "checkpoints" / names[0])["step"] == 20


def test_load_model_is_in_eval_mode_with_the_weights(tmp_path):
    s = state(3)
    ck.save_checkpoint(ck.checkpoint_path(tmp_path, 3), s)
    model, cfg = loading.load_model(tmp_path)
    assert not model.training and cfg.model == MODEL
    assert all(torch.equal(v, s["model"][k]) for k, v in model.state_dict().items())


def test_load_model_checks_the_checksum_and_loads_an_old_unchecked_file(tmp_path, caplog):
    path = ck.save_checkpoint(ck.checkpoint_path(tmp_path, 3), state(3))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"step_00000003\.pt does not match its checksum"):
        loading.load_model(tmp_path)
    ck.save_checkpoint(path, state(3))
    checksum_path(path).unlink()  # as gqn <= 0.2 wrote it
    model, _ = loading.load_model(tmp_path)
    assert not model.training
    assert "no checksum file" in caplog.text and str(path) in caplog.text


def test_model_only_checkpoint_serves_eval_but_is_refused_for_resume(tmp_path):
    s = state(3)  # no optimizer or schedule states, like the eval tests' checkpoints
    ck.save_checkpoint(ck.checkpoint_path(tmp_path, 3), s)
    with pytest.raises(ValueError, match=r"has no optimizer/schedules state .* cannot be resumed"):
        loading.load_checkpoint(tmp_path, resume=True)
    model, _ = loading.load_model(tmp_path)
    optimizer = torch.optim.Adam(model.parameters()).state_dict()
    full = {**s, "optimizer": optimizer, "schedules": {"sigma": {}, "lr": {}}}
    ck.save_checkpoint(ck.checkpoint_path(tmp_path, 3), full)
    assert loading.load_checkpoint(tmp_path, resume=True)["optimizer"] == optimizer


def test_rng_state_round_trips():
    saved = ck.rng_state()
    a = torch.rand(3)
    ck.set_rng_state(saved)
    assert torch.equal(torch.rand(3), a)


def test_disk_full_mid_write_keeps_previous_and_leaves_no_temp(tmp_path, monkeypatch):
    ck.save_checkpoint(ck.checkpoint_path(tmp_path, 1), state(1))
    before = (tmp_path / "checkpoints" / "step_00000001.pt").read_bytes()

    def full_disk(obj, f):
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ck.save_checkpoint(ck.checkpoint_path(tmp_path, 2), state(2), keep_last=1)
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["step_00000001.pt", "step_00000001.pt.sha256"]
    assert (tmp_path / "checkpoints" / "step_00000001.pt").read_bytes() == before


def test_refusals_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        loading.load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        loading.load_checkpoint(tmp_path)
    good = ck.save_checkpoint(ck.checkpoint_path(tmp_path, 1), state(1))
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        loading.load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a gqn training checkpoint"):
        loading.load_checkpoint(other)
    newer = tmp_path / "newer.pt"
    torch.save({**torch.load(good, weights_only=True), "format_version": 99}, newer)
    with pytest.raises(ValueError, match="newer than this gqn"):
        loading.load_checkpoint(newer)


def test_checkpoint_of_another_model_names_the_keys(tmp_path):
    bigger = GQNConfig(**{**to_dict(MODEL), "hidden_channels": 16})
    ck.save_checkpoint(ck.checkpoint_path(tmp_path, 1), state(1, bigger))
    st = loading.load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"does not fit this model: .*shape"):
        loading.load_model_state(GQN(MODEL), st)
    st["model_class"] = "CGQN"
    with pytest.raises(ValueError, match="holds a 'CGQN' model"):
        loading.load_model_state(GQN(MODEL), st)
    assert ck.config_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == [
        "a.c: 2 != 3"
    ]
