"""The narratives experiments (seed 003 §4.1): end to end on tiny runs, their measures by hand,
and the deterministic baseline."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from gqn.batch import QueryBatch
from gqn.cli import main
from gqn.eval.video_metrics import distinct_share, min_mse, mix_samples, modal_share
from gqn.models import CGQN

TINY = {
    "model": {"image_size": 16, "viewpoint": "time", "viewpoint_dim": 7, "num_steps": 1},
    "data": {"family": "traveling-salesman", "family_params": {"image_size": 16, "frames": 9},
             "batch_size": 2, "min_context": 1, "max_context": 3, "num_targets": 2,
             "num_workers": 0, "preview_scenes": 1},
    "optim": {"max_steps": 2, "lr_steps": 2, "sigma_steps": 2},
    "log": {"every": 1, "image_every": 100, "progress": False, "tensorboard": False},
    "threads": 1, "device": "cpu",
}  # fmt: skip
MODELS = {
    "cgqn": {"name": "cgqn", "nf_to_hidden": 4, "nf_enc": 4, "nf_to_obs": 4, "nf_dec": 4,
             "nf_z": 2, "kernel_size": 3},
    "gqn": {"name": "gqn", "representation": "pool", "r_channels": 8, "hidden_channels": 4,
            "canvas_channels": 4},
}  # fmt: skip
EXPERIMENTS = {  # min-mse scores chunks of 1 step; the others want chunks of 2: the same runs
    "narratives-min-mse": ["--every", "1", "--videos", "2", "--samples", "3", "--context", "3"],
    "narratives-samples": ["--every", "2", "--videos", "1", "--context", "3"],
    "narratives-consistency": ["--every", "2", "--videos", "2", "--samples", "2", "--context", "3"],
}


def finite_numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in finite_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in finite_numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """All three experiments on one tiny runs directory (2 steps a run, chunks of 1)."""
    root = tmp_path_factory.mktemp("narratives")
    for stem, model in MODELS.items():
        config = {**TINY, "model": {**TINY["model"], **model}}
        (root / f"narratives-{stem}-tiny.yaml").write_text(yaml.safe_dump(config))
    common = ["--runs", str(root / "runs"), "--configs", str(root), "--scale", "tiny",
              "--out", str(root / "out")]  # fmt: skip
    stamps = {}
    for name, extra in EXPERIMENTS.items():
        assert main(["experiment", name, *common, *extra]) == 0
        stamps[name] = (root / "runs" / "ts-cgqn" / "chunks.json").stat().st_mtime_ns
    return root / "out", stamps


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_experiment_writes_json_markdown_and_figures_with_finite_numbers(ran, name):
    out, _ = ran
    record = json.loads((out / f"{name}.json").read_text())
    numbers = finite_numbers({k: v for k, v in record.items() if k != "machine"})
    assert numbers and all(math.isfinite(x) for x in numbers)
    assert (out / f"{name}.md").read_text().startswith(f"# {name}")
    pngs = list(out.glob(f"{name}*.png"))
    assert pngs and all(p.stat().st_size > 0 for p in pngs)


def test_min_mse_follows_training_chunks_and_the_later_experiments_reuse_the_runs(ran):
    out, stamps = ran
    record = json.loads((out / "narratives-min-mse.json").read_text())
    assert [p["step"] for p in record["curves"]["ts-det"]] == [1, 2]
    assert set(record["final"]) == {"ts-cgqn", "ts-gqn", "ts-det"}
    # samples and consistency trained nothing more: the run's chunk record was not rewritten
    assert len(set(stamps.values())) == 1


def test_min_mse_is_the_mse_of_the_closest_whole_video():
    truth = torch.zeros(2, 2, 1, 1, 1)  # 2 videos of 2 one-pixel frames
    samples = torch.tensor([[[0.0, 0.4], [0.2, 0.2], [0.1, 0.5]],  # video 0, 3 samples
                            [[1.0, 1.0], [0.0, 0.6], [0.3, 0.0]]])  # fmt: skip
    samples = samples.view(2, 3, 2, 1, 1, 1)
    # per-sample MSEs: video 0 -> 0.08, 0.04, 0.13; video 1 -> 1.0, 0.18, 0.045. The best frame
    # of each would give 0.02 and 0 instead: the measure must pick whole samples.
    assert min_mse(samples, truth).tolist() == pytest.approx([0.04, 0.045])
    assert min_mse(samples[:, :1], truth).tolist() == pytest.approx([0.08, 1.0])
    with pytest.raises(ValueError, match="samples must be"):
        min_mse(samples, truth[:, :1])


def test_consistency_is_one_for_frames_that_agree_and_less_for_mixed_ones():
    assert modal_share([7, 7, 7, 7]) == 1.0
    assert modal_share([7, 7, 3, 7]) == 0.75
    assert distinct_share([2, 4, 1, 3]) == 1.0  # a tour of all four shapes
    assert distinct_share([2, 4, 2, 3]) == 0.75
    assert distinct_share([2, -1, 1, 3]) == 0.75  # the salesman lost in one frame
    # the random control takes each frame from a sample of the same video, in place
    samples = torch.arange(2 * 5 * 3).view(2, 5, 3, 1).float()
    mixed = mix_samples(samples, torch.Generator().manual_seed(0))
    frame = samples.view(2, 5, 3)
    for b in range(2):
        for t in range(3):
            assert set(mixed[b, :, t, 0].tolist()) <= set(frame[b, :, t].tolist())
    source = (mixed.view(2, 5, 3).long() // 3) % 5  # the sample each mixed frame came from
    assert (source != source[..., :1]).any()  # some mixed videos join frames of several samples


def test_the_deterministic_baseline_has_no_latent():
    config = CGQN.tiny_config()
    config.latent = False
    model = CGQN(config)
    assert model.latent is None and model.latent_channels == 0
    assert not any("latent" in name for name, _ in model.named_parameters())
    s = config.image_size
    batch = QueryBatch.full_context(
        torch.rand(2, 2, 3, s, s), torch.randn(2, 2, 7), torch.rand(2, 3, 3, s, s),
        torch.randn(2, 3, 7),
    )  # fmt: skip
    terms = model.elbo(batch, 0.5)
    assert torch.equal(terms.kl, torch.zeros(2))
    r = model.represent(batch.context_images, batch.context_viewpoints)
    samples = model.generate(r, batch.target_viewpoints, 4)
    assert torch.equal(samples, samples[:, :1].expand_as(samples))
    assert torch.allclose(samples[:, 0], model.reconstruct(batch))
