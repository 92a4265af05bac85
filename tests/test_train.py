"""``gqn train``: exact resume (in process and after SIGKILL), SIGTERM, health, bad input."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gqn.cli import main
from gqn.data.generate import generate_dataset
from gqn.data.samplers import ScenePool
from gqn.data.scenes import make_family
from gqn.data.store import SceneStore
from gqn.io import checksum_path
from gqn.losses import ELBOTerms
from gqn.models import GQN
from gqn.models.loading import find_latest, list_checkpoints, load_checkpoint
from gqn.run_config import load_run_config
from gqn.train.data import PREVIEW_SALT, TRAIN_SALT, online_seed, preview_batch, training_loader
from gqn.train.trainer import train
from gqn.typed_config import ConfigError

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "model": {
        "image_size": 16,
        "representation": "pool",
        "r_channels": 16,
        "hidden_channels": 8,
        "canvas_channels": 8,
        "num_steps": 2,
    },
    "data": {
        "family": "shepard-metzler",
        "family_params": {"image_size": 16, "views": 4, "parts": 2},
        "batch_size": 3,
        "num_workers": 0,
        "preview_scenes": 2,
    },
    "optim": {"max_steps": 6, "lr_start": 2e-3},
    "log": {
        "every": 1,
        "image_every": 3,
        "checkpoint_every": 3,
        "keep_last": 2,
        "progress": False,
        "tensorboard": False,
    },
    "health": {"warmup_steps": 0},
    "device": "cpu",
}


def write_config(tmp_path: Path, **sections) -> Path:
    cfg = json.loads(json.dumps(TINY))
    for k, v in sections.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def run_cli(*argv: str, new_session: bool = False) -> subprocess.Popen:
    """``gqn train`` in a subprocess; ``new_session`` makes it lead its own process group."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gqn", "train", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.stdout.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_online_training_shares_no_scene_with_generated_stores_or_previews(tmp_path, monkeypatch):
    data = load_run_config(write_config(tmp_path)).data  # family_seed 0
    family = make_family(data.family, **data.family_params)
    seeds = []
    render = family.render_scenes

    def recording(seed, indices, device=None):
        seeds.append(seed)
        return render(seed, indices, device=device)

    monkeypatch.setattr(family, "render_scenes", recording)
    list(training_loader(data, family, seed=0, start_step=0, num_steps=2, rank=0, world_size=1))
    preview_batch(data, family)
    train_seed, preview_seed = seeds[0], seeds[-1]
    assert seeds == [train_seed, train_seed, preview_seed] and train_seed != preview_seed
    for family_seed in range(100):  # never the seed of a `gqn data generate --seed S` store
        for salt in (TRAIN_SALT, PREVIEW_SALT):
            assert online_seed(family_seed, salt) > 2**32
    store = SceneStore(generate_dataset(family, tmp_path / "seed0", 6, seed=0, progress=False))
    trained = np.asarray(render(train_seed, list(range(6)))[0])
    stored = [store.read(i)[0] for i in range(6)]
    assert not any(np.array_equal(a, b) for a in trained for b in stored)


# Every KL counts as "collapsed" and no warning fires: the health counters then count log steps.
COUNTING_HEALTH = {"kl_collapse_nats": 1e9, "window": 100}


def test_resume_in_process_continues_the_curve(tmp_path):
    cfg_path = write_config(tmp_path, health=COUNTING_HEALTH)
    straight = train(load_run_config(cfg_path, [f"out_dir={tmp_path / 'a'}"]))
    assert straight.status == "finished" and straight.step == 6
    half = [f"out_dir={tmp_path / 'b'}"]
    train(load_run_config(cfg_path, [*half, "optim.max_steps=3"]))
    resumed = train(load_run_config(cfg_path, half), resume=True)
    assert resumed.step == 6
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-6), step
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    for row in (r for r in rows if "loss" in r):  # one step per window: PSNR of that step's MSE
        assert 0 < row["recon_mse"] < 1
        assert row["recon_psnr_db"] == pytest.approx(-10 * math.log10(row["recon_mse"]), rel=1e-4)
    sa, sb = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert all(torch.allclose(sa["model"][k], sb["model"][k], atol=0) for k in sa["model"])
    assert sb["health"] == sa["health"]  # the health windows resumed too
    assert sa["health"]["low_kl"] == 6
    assert (tmp_path / "b" / "config.yaml").exists()
    assert list((tmp_path / "a" / "images").glob("preview_*.png"))
    assert [p.name for p in list_checkpoints(tmp_path / "a")] == [
        "step_00000003.pt",
        "step_00000006.pt",
    ]


def tensorboard_scalars(run_dir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_a_fresh_run_in_a_folder_without_checkpoints_starts_its_logs_afresh(tmp_path):
    """A run killed before its first checkpoint and started again in the same folder logs one
    curve, not two: in metrics.jsonl and in TensorBoard."""
    cfg = write_config(tmp_path, log={"tensorboard": True})
    run_dir = tmp_path / "r"
    train(load_run_config(cfg, [f"out_dir={run_dir}", "optim.max_steps=5", "optim.lr_start=1e-2"]))
    for path in list_checkpoints(run_dir):
        path.unlink()
    time.sleep(1.1)  # event files are named by the second: the new one must sort after the old
    train(load_run_config(cfg, [f"out_dir={run_dir}", "optim.max_steps=3"]))
    fresh = tmp_path / "fresh"
    train(load_run_config(cfg, [f"out_dir={fresh}", "optim.max_steps=3"]))
    assert losses(run_dir) == losses(fresh) and sorted(losses(run_dir)) == [1, 2, 3]
    board = tensorboard_scalars(run_dir, "loss")
    assert sorted(board) == [1, 2, 3]
    for step, value in board.items():
        assert value == pytest.approx(losses(fresh)[step], rel=1e-5), step


def test_resume_compares_the_schedules_the_checkpoint_restores(tmp_path, capsys):
    """Not its stored config: a checkpoint whose config.yaml claims another lr_end (as an
    override that older gqn ignored on --resume left it) resumes with the lr_end it restores."""
    cfg = write_config(tmp_path)
    run = ["--config", str(cfg), "--out", str(tmp_path / "r")]
    assert main(["train", *run, "optim.max_steps=3"]) == 0
    path = find_latest(tmp_path / "r")
    state = torch.load(path, weights_only=True)
    state["config"]["optim"]["lr_end"] = 1e-5
    torch.save(state, path)
    checksum_path(path).unlink()  # as older gqn wrote it: no checksum
    assert main(["train", "--resume", *run, "optim.max_steps=4", "optim.lr_end=1e-5"]) == 2
    assert "optim.lr_end: 5e-05 != 1e-05" in capsys.readouterr().err
    assert main(["train", "--resume", *run, "optim.max_steps=4"]) == 0


def test_checkpoint_of_gqn_0_1_without_new_keys_resumes(tmp_path):
    """A 0.1 checkpoint has no model.aggregation (behaviour: sum) and no health state."""
    cfg_path = write_config(tmp_path, health=COUNTING_HEALTH)
    run = [f"out_dir={tmp_path / 'old'}"]
    train(load_run_config(cfg_path, [*run, "optim.max_steps=3"]))
    path = find_latest(tmp_path / "old")
    state = torch.load(path, weights_only=True)
    del state["config"]["model"]["aggregation"], state["health"]
    torch.save(state, path)
    checksum_path(path).unlink()  # gqn 0.1 wrote no checksum
    resumed = train(load_run_config(cfg_path, run), resume=True)
    assert resumed.status == "finished" and resumed.step == 6
    assert load_checkpoint(tmp_path / "old")["health"]["low_kl"] == 3  # counted afresh
    with pytest.raises(ValueError, match=r"model\.aggregation: 'sum' != 'mean'"):
        train(load_run_config(cfg_path, [*run, "model.aggregation=mean"]), resume=True)


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    cfg = write_config(tmp_path, log={"checkpoint_every": 2})
    straight = tmp_path / "straight"
    train(load_run_config(cfg, [f"out_dir={straight}", "optim.max_steps=8"]))
    killed = tmp_path / "killed"
    proc = run_cli("--config", str(cfg), "--out", str(killed), "optim.max_steps=100000")
    wait_for(lambda: (killed / "checkpoints" / "step_00000004.pt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main(["train", "--resume", "--out", str(killed), "optim.max_steps=8"]) == 0
    a, b = losses(straight), losses(killed)
    assert sorted(b) == list(range(1, 9))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-6), step


def test_progress_bar_into_a_pipe_redraws_rarely(tmp_path):
    """20 steps logged every step: a bar redrawn per log step would draw 20+ times (the pipe
    is read in text mode, so each carriage return arrives as a newline)."""
    cfg = write_config(tmp_path, log={"progress": True, "checkpoint_every": 1000})
    proc = run_cli("--config", str(cfg), "--out", str(tmp_path / "run"), "optim.max_steps=20")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "20/20" in out and out.count("/20 [") <= 4, out  # a redraw shows "n/20 [" once


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_finishes_the_step_checkpoints_and_exits_0(tmp_path, sig):
    cfg = write_config(tmp_path, log={"checkpoint_every": 1000})
    run_dir = tmp_path / "run"
    proc = run_cli("--config", str(cfg), "--out", str(run_dir), "optim.max_steps=100000")
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and len(losses(run_dir)) >= 2, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"interrupted by {sig.name}" in out
    latest = find_latest(run_dir)
    assert latest is not None
    assert load_checkpoint(latest)["step"] >= 2
    assert not list((run_dir / "checkpoints").glob("*.tmp"))


def nan_after(model_cls, first_bad: int, count: int | None):
    """Patch ``elbo`` so calls ``first_bad .. first_bad + count - 1`` return a NaN loss."""
    original = model_cls.elbo
    calls = {"n": 0}

    def elbo(self, batch, sigma):
        terms = original(self, batch, sigma)
        calls["n"] += 1
        bad = calls["n"] > first_bad and (count is None or calls["n"] <= first_bad + count)
        if bad:
            nll = terms.nll_per_target * float("nan")
            return ELBOTerms(nll, terms.kl_groups, terms.target_mask, terms.num_dims)
        return terms

    return elbo


def nan_gradient_at(model_cls, bad_call: int):
    """Patch ``elbo`` so call ``bad_call`` has a finite loss but NaN gradients: the loss gains
    ``0 * sqrt(0 * p)``, which is 0, while its gradient is ``0 * inf``."""
    original = model_cls.elbo
    calls = {"n": 0}

    def elbo(self, batch, sigma):
        terms = original(self, batch, sigma)
        calls["n"] += 1
        if calls["n"] == bad_call:
            p = next(self.parameters())
            nll = terms.nll_per_target + 0.0 * torch.sqrt((p * 0.0).sum())
            return ELBOTerms(nll, terms.kl_groups, terms.target_mask, terms.num_dims)
        return terms

    return elbo


def test_sigterm_to_the_whole_process_group_still_checkpoints(tmp_path):
    """A scheduler (Slurm, ``pkill -f``) or Ctrl-C signals the data-loader workers too. Were they
    to die of it, the main process would fail with "DataLoader worker ... killed by signal"
    before writing its exit checkpoint."""
    cfg = write_config(tmp_path, data={"num_workers": 2}, log={"checkpoint_every": 1000})
    run_dir = tmp_path / "run"
    args = ("--config", str(cfg), "--out", str(run_dir), "optim.max_steps=100000")
    proc = run_cli(*args, new_session=True)
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and len(losses(run_dir)) >= 2, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "interrupted by SIGTERM" in out and "killed by signal" not in out
    assert load_checkpoint(find_latest(run_dir))["step"] >= 2


def test_a_nonfinite_step_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(GQN, "elbo", nan_after(GQN, 2, 1))
    result = train(load_run_config(write_config(tmp_path), [f"out_dir={tmp_path / 'r'}"]))
    assert result.status == "finished" and result.step == 6
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_steps"] for r in rows if "skipped_steps" in r] == [0, 0, 1, 0, 0, 0]


def test_a_nonfinite_gradient_with_a_finite_loss_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(GQN, "elbo", nan_gradient_at(GQN, 4))
    result = train(load_run_config(write_config(tmp_path), [f"out_dir={tmp_path / 'r'}"]))
    assert result.status == "finished"
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_steps"] for r in rows if "skipped_steps" in r] == [0, 0, 0, 1, 0, 0]
    state = load_checkpoint(tmp_path / "r")
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert all(
        torch.isfinite(t).all()
        for per_param in state["optimizer"]["state"].values()
        for t in per_param.values()
    )


def test_grad_clip_bounds_the_norm_the_optimiser_sees(tmp_path, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"]]
        seen.append(float(torch.nn.utils.get_total_norm([g for g in grads if g is not None])))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = write_config(tmp_path, optim={"grad_clip": 1e-3})
    train(load_run_config(cfg, [f"out_dir={tmp_path / 'r'}"]))
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    logged = [r["grad_norm"] for r in rows if "grad_norm" in r]
    assert len(seen) == 6 and max(seen) <= 1e-3 * (1 + 1e-4)
    assert min(logged) > 1e-2  # the log shows the norm before clipping


def test_many_nonfinite_steps_stop_and_keep_the_good_checkpoint(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(GQN, "elbo", nan_after(GQN, 3, None))
    cfg = write_config(tmp_path, optim={"max_steps": 50}, health={"max_bad_steps": 4})
    run_dir = tmp_path / "r"
    assert main(["train", "--config", str(cfg), "--out", str(run_dir)]) == 3
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_00000003.pt"]
    before = load_checkpoint(run_dir)["model"]
    assert all(torch.isfinite(v).all() for v in before.values())
    assert "stopped at step 7: 4 consecutive steps had a non-finite loss" in caplog.text
    assert "the last good checkpoint is kept" in caplog.text


def test_config_errors_are_clear(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["train", "--config", str(cfg), "optim.max_step=3"]) == 2
    assert "did you mean 'max_steps'" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "optim.max_steps=lots"]) == 2
    assert "optim.max_steps: expected an integer" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"modle": {}}))
    with pytest.raises(ConfigError, match="did you mean 'model'"):
        load_run_config(bad)
    assert main(["train"]) == 2
    assert "--config FILE is required" in capsys.readouterr().err
    cfg = write_config(tmp_path, data={"family": None})
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "x")]) == 2
    assert "no training data" in capsys.readouterr().err
    cfg = write_config(tmp_path)
    for pool in (["data.pool_scenes=8"], ["data.pool_scenes=0", "data.pool_steps=5"]):
        assert main(["train", "--config", str(cfg), *pool]) == 2
        assert "a scene pool needs both data.pool_scenes >= 1" in capsys.readouterr().err


def test_scene_pool_reaches_the_loader_and_must_fit_the_store(tmp_path, capsys, caplog):
    cfg = load_run_config(write_config(tmp_path), ["data.pool_scenes=5", "data.pool_steps=4"])
    family = make_family("shepard-metzler", **cfg.data.family_params)
    loader = training_loader(cfg.data, family, 0, 0, 6, 0, 1)
    assert loader.loader.dataset.pool == ScenePool(scenes=5, steps=4)
    cfg = load_run_config(
        write_config(tmp_path),
        [f"out_dir={tmp_path / 'p'}", "data.pool_scenes=3", "data.pool_steps=6"],
    )
    with caplog.at_level(logging.WARNING, logger="gqn.train.trainer"):
        assert train(cfg).status == "finished"
    assert "the whole run trains on 3 scenes" in caplog.text
    store = generate_dataset(
        make_family("shepard-metzler", image_size=16, views=4, parts=2),
        tmp_path / "d16",
        10,
        progress=False,
    )
    data = {"family": None, "family_params": {}, "path": str(store)}
    cfg = write_config(tmp_path, data=data)
    argv = ["train", "--config", str(cfg), "--out", str(tmp_path / "r")]
    assert main([*argv, "data.pool_scenes=50", "data.pool_steps=2"]) == 2
    assert "lower data.pool_scenes" in capsys.readouterr().err


def test_dataset_of_another_image_size_is_refused(tmp_path, capsys):
    store = generate_dataset(
        make_family("shepard-metzler", image_size=32, views=3, parts=2),
        tmp_path / "d32",
        8,
        progress=False,
    )
    cfg = write_config(tmp_path, data={"family": None, "family_params": {}, "path": str(store)})
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "32x32 images but the model expects 16x16" in err


def test_unwritable_run_dir_and_existing_run_are_refused(tmp_path, capsys):
    cfg = write_config(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "--config", str(cfg), "--out", str(blocker / "run")]) == 2
    assert "is not writable" in capsys.readouterr().err
    run_dir = tmp_path / "r"
    assert main(["train", "--config", str(cfg), "--out", str(run_dir), "optim.max_steps=1"]) == 0
    assert main(["train", "--config", str(cfg), "--out", str(run_dir)]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_resume_with_another_model_config_names_the_keys(tmp_path, capsys):
    cfg = write_config(tmp_path)
    run_dir = tmp_path / "r"
    assert main(["train", "--config", str(cfg), "--out", str(run_dir), "optim.max_steps=1"]) == 0
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(run_dir),
                "--resume",
                "model.hidden_channels=16",
                "model.num_steps=3",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "model.hidden_channels: 8 != 16" in err and "model.num_steps: 2 != 3" in err
    resume = ["train", "--config", str(cfg), "--out", str(run_dir), "--resume"]
    assert main([*resume, "optim.lr_end=1e-05", "optim.sigma_steps=7"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr_end: 5e-05 != 1e-05" in err and "optim.sigma_steps: 200000 != 7" in err
    assert "drop these overrides" in err
    assert main([*resume, "optim.max_steps=2", "optim.grad_clip=1.0", "log.every=2"]) == 0
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_channels_last_trains_like_the_default_layout(tmp_path, monkeypatch):
    """The switch goes through ``train`` (model and batches in NHWC) without changing the run."""
    import gqn.accel

    seen: dict[str, list[bool]] = {}
    prepare_batch = gqn.accel.prepare_batch

    def spy(batch, *args, **kwargs):
        batch = prepare_batch(batch, *args, **kwargs)
        images = batch.target_images.flatten(0, 1)
        seen[layout].append(images.is_contiguous(memory_format=torch.channels_last))
        return batch

    monkeypatch.setattr(gqn.accel, "prepare_batch", spy)
    cfg = write_config(tmp_path)
    runs = {}
    for layout in ("false", "true"):
        seen[layout] = []
        out = tmp_path / f"cl_{layout}"
        overrides = [f"out_dir={out}", "accel.precision=fp32", f"accel.channels_last={layout}"]
        assert train(load_run_config(cfg, overrides)).status == "finished"
        runs[layout] = losses(out)
    assert sorted(runs["true"]) == [1, 2, 3, 4, 5, 6]
    assert len(seen["true"]) >= 6 and all(seen["true"])  # every training batch in NHWC
    assert not any(seen["false"])
    for step, loss in runs["false"].items():
        assert runs["true"][step] == pytest.approx(loss, rel=1e-4), step
