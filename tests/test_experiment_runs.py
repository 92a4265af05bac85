"""Experiment runs: training in chunks, every chunk's checkpoint kept, a rerun resumes."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.eval import evaluate
from gqn.experiments.report import write_report
from gqn.experiments.runs import chunk_scores, train_in_chunks
from gqn.models.loading import list_checkpoints

TINY = {
    "model": {"image_size": 8, "representation": "pool", "r_channels": 8,
              "hidden_channels": 4, "canvas_channels": 4, "num_steps": 1},
    "data": {"family": "shepard-metzler", "family_params": {"image_size": 8, "views": 3,
             "parts": 2}, "batch_size": 2, "num_workers": 0, "preview_scenes": 1,
             "max_context": 1},
    "optim": {"max_steps": 100, "lr_start": 1e-3, "lr_steps": 100},
    "log": {"every": 1, "image_every": 100, "progress": False, "tensorboard": False},
    "threads": 1,
}  # fmt: skip


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_chunks_are_kept_and_a_rerun_trains_nothing(config_path, tmp_path):
    run = tmp_path / "run"
    chunks = list(train_in_chunks(config_path, [], run, steps=5, every=2))
    assert [c.step for c in chunks] == [2, 4, 5]
    assert [p.name for p in list_checkpoints(run)] == [c.checkpoint.name for c in chunks]
    assert chunks[0].train_seconds < chunks[1].train_seconds < chunks[2].train_seconds
    state = torch.load(chunks[-1].checkpoint, weights_only=False)
    assert state["step"] == 5 and state["config"]["optim"]["lr_steps"] == 100
    stamps = [c.checkpoint.stat().st_mtime_ns for c in chunks]
    again = list(train_in_chunks(config_path, [], run, steps=5, every=2))
    assert again == chunks
    assert [c.checkpoint.stat().st_mtime_ns for c in again] == stamps


def test_a_longer_rerun_resumes_from_the_last_chunk(config_path, tmp_path):
    run = tmp_path / "run"
    first = list(train_in_chunks(config_path, [], run, steps=2, every=2))
    more = list(train_in_chunks(config_path, [], run, steps=4, every=2))
    assert more[0] == first[0] and more[1].step == 4
    assert more[1].train_seconds > first[0].train_seconds


def test_chunk_scores_are_written_once_and_reused_only_for_the_same_settings(
    config_path, tmp_path, monkeypatch
):
    sixteen = ["model.image_size=16", "data.family_params.image_size=16"]  # SSIM needs >= 11 px
    (chunk,) = train_in_chunks(config_path, sixteen, tmp_path / "run", steps=1, every=1)
    family = make_family("shepard-metzler", image_size=16, views=3, parts=2)
    store = generate_dataset(family, tmp_path / "data", 30, progress=False)
    calls = []
    real = evaluate.evaluate_checkpoint
    monkeypatch.setattr(
        evaluate, "evaluate_checkpoint", lambda *a, **k: calls.append(k) or real(*a, **k)
    )
    settings = {"num_scenes": 2, "num_samples": 1, "ks": [1]}
    first = chunk_scores(chunk.checkpoint, store, tmp_path / "eval", settings)
    assert first["settings"] == settings
    assert json.loads((tmp_path / "eval" / "eval.json").read_text()) == first  # settings kept
    assert chunk_scores(chunk.checkpoint, store, tmp_path / "eval", settings) == first
    assert len(calls) == 1
    other = chunk_scores(chunk.checkpoint, store, tmp_path / "eval", {**settings, "num_samples": 2})
    assert len(calls) == 2 and other["num_samples"] == 2


def test_bad_chunking_is_refused(config_path, tmp_path):
    with pytest.raises(ValueError, match="every must be >= 1"):
        next(train_in_chunks(config_path, [], tmp_path / "run", steps=4, every=0))


def test_report_holds_record_and_machine(tmp_path):
    path = write_report(tmp_path / "out", "exp", {"a": 1.5}, "# exp\n")
    record = json.loads(path.read_text())
    assert record["a"] == 1.5 and "cpu" in record["machine"]
    assert (tmp_path / "out" / "exp.md").read_text() == "# exp\n"


def test_multiscale_compare_runs_resumes_and_reports(tmp_path):
    """`gqn experiment multiscale-compare` on a tiny model 2: the report, per-layer figures, and
    a rerun that trains and scores nothing again; a missing model config is refused first."""
    from gqn.cli import main
    from gqn.data.generate import generate_dataset
    from gqn.data.scenes import make_family

    family = make_family("shepard-metzler", image_size=16, views=4, parts=2)
    data = generate_dataset(family, tmp_path / "data", 12, seed=0, progress=False)
    models = tmp_path / "models"
    models.mkdir()
    tiny = {**TINY, "model": {**TINY["model"], "image_size": 16}}
    tiny["data"] = {k: v for k, v in TINY["data"].items() if k not in ("family", "family_params")}
    tiny["data"]["test_fraction"] = 0.25
    multi = {"name": "multiscale", "layers": [1, 1], "canvas": "shared",
             "canvas_upsample": "upconv", "layer_input": "image", "nll": "last"}  # fmt: skip
    (models / "model2.yaml").write_text(
        yaml.safe_dump({**tiny, "model": {**tiny["model"], **multi}})
    )
    out = tmp_path / "out"
    argv = ["experiment", "multiscale-compare", "--models-dir", str(models), "--models", "2",
            "--data", str(data), "--out", str(out), "--steps", "2", "--eval-every", "1",
            "--scenes", "2", "--samples", "1", "--k", "1"]  # fmt: skip
    assert main([*argv[:5], "2,7", *argv[6:]]) == 2  # no model7.yaml: refused before training
    assert not out.exists()
    assert main(argv) == 0
    report = json.loads((out / "multiscale-compare.json").read_text())
    assert list(report["models"]) == ["model2"]
    m2 = report["models"]["model2"]
    assert [p["step"] for p in m2["curve"]] == [1, 2] and m2["layer_figures"]
    assert len(m2["final"]["kl_per_layer_nats"]) == 2
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("eval.json")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("eval.json")} == stamps
