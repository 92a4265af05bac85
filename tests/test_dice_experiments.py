"""The MNIST-dice experiments (dice-elbo, dice-kl-consistency, dice-samples), their hidden-face
batches (training sampler and held-out batches) and the KL bookkeeping they read."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import pytest
import torch
import yaml
from PIL import Image

from gqn.batch import QueryBatch
from gqn.data.dataset import SceneDataset
from gqn.data.dice_sampler import HiddenFaceBatchSampler, hidden_face_dataset
from gqn.data.loader import make_loader
from gqn.data.samplers import StepPlan
from gqn.data.scenes import make_family
from gqn.data.scenes.mnist_dice import faces_of
from gqn.experiments import EXPERIMENTS, dice_elbo, dice_kl, dice_runs, dice_samples
from gqn.models import CGQN, GQN

TRAIN = {
    "data": {"view_split": "hidden-face", "batch_size": 2, "min_context": 1, "max_context": 2,
             "num_targets": 3, "num_workers": 0, "preview_scenes": 1},
    "optim": {"max_steps": 2, "lr_start": 1e-3, "lr_steps": 2},
    "log": {"every": 1, "image_every": 100, "progress": False, "tensorboard": False},
    "threads": 1,
    "device": "cpu",
}  # fmt: skip
MODELS = {
    "cgqn": {"name": "cgqn", "image_size": 16, "num_steps": 1, "nf_to_hidden": 4, "nf_enc": 4,
             "nf_to_obs": 4, "nf_dec": 4, "nf_z": 2, "kernel_size": 3},
    "gqn": {"name": "gqn", "image_size": 16, "representation": "pool", "aggregation": "mean",
            "r_channels": 8, "hidden_channels": 4, "canvas_channels": 4, "num_steps": 1,
            "kernel_size": 3},
}  # fmt: skip
FLAGS = ["--steps", "2", "--every", "1", "--scenes", "40", "--test-scenes", "2",
         "--contexts", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """All three experiments on tiny configs sharing one --runs directory (elbo trains, the
    others reuse its seed-0 runs). Returns (runs dir, out dir)."""
    root = tmp_path_factory.mktemp("dice")
    paths = {}
    for name, model in MODELS.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump({**TRAIN, "model": model}))
    common = [*FLAGS, "--runs", str(root / "runs"), "--out", str(root / "out"),
              "--cgqn-config", str(paths["cgqn"]), "--gqn-config", str(paths["gqn"])]  # fmt: skip
    for module, extra in (
        (dice_elbo, ["--settings", "piecewise"]),
        (dice_kl, ["--seeds", "2", "--context-sides", "1"]),
        (dice_samples, ["--samples", "2", "--context-sides", "1"]),
    ):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert module.run(parser.parse_args([*common, *extra])) == 0
    return root / "runs", root / "out"


def finite_numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in finite_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in finite_numbers(v)]
    return [value] if isinstance(value, float) else []


@pytest.mark.parametrize("name", ["dice-elbo", "dice-kl-consistency", "dice-samples"])
def test_each_experiment_writes_json_markdown_and_png(reports, name):
    _, out = reports
    assert name in EXPERIMENTS
    record = json.loads((out / f"{name}.json").read_text())
    numbers = finite_numbers(record)
    assert numbers and all(math.isfinite(x) for x in numbers)
    assert f"({name}.png)" in (out / f"{name}.md").read_text()
    assert Image.open(out / f"{name}.png").size[0] > 50


def test_the_experiments_share_their_runs(reports):
    runs, out = reports
    elbo = json.loads((out / "dice-elbo.json").read_text())
    assert [(r["model"], r["step"]) for r in elbo["rows"]] == [
        ("cgqn", 1), ("cgqn", 2), ("gqn", 1), ("gqn", 2)
    ]  # fmt: skip
    row = elbo["rows"][-1]
    assert row["neg_elbo_nats"] == pytest.approx(row["nll_nats"] + row["kl_nats"])
    kl = json.loads((out / "dice-kl-consistency.json").read_text())
    assert [(r["model"], r["seed"]) for r in kl["runs"]] == [
        ("cgqn", 0), ("cgqn", 1), ("gqn", 0), ("gqn", 1)
    ]  # fmt: skip
    assert kl["summary"]["gqn"]["kl_3"]["sd"] is not None
    # 2 seeds x 2 models, seed 0 trained once by dice-elbo; nothing else
    assert sorted(p.name for p in (runs / "piecewise").iterdir()) == [
        "cgqn-seed0", "cgqn-seed1", "gqn-seed0", "gqn-seed1"
    ]  # fmt: skip
    samples = json.loads((out / "dice-samples.json").read_text())
    assert len(samples["rows"]) == 3 + 2 * 2


def test_held_out_batches_show_only_the_unseen_face(reports):
    runs, _ = reports
    data = runs / "data-16"
    batch, indices, splits = dice_runs.test_batch(data, 3, 2, seed=1, context_sides=1)
    store = SceneDataset(data).store
    for i, (index, split) in enumerate(zip(indices, splits, strict=True)):
        faces = faces_of(store, index)
        assert faces.seen[split.target, split.face].all()
        assert faces.hidden[split.context, split.face].all()
        frames, _ = store.read(index, split.target.tolist())
        expected = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        assert torch.equal(batch.target_images[i], expected)
    assert batch.target_images.shape[:2] == (len(indices), 3)


def test_training_batches_show_only_the_unseen_face(reports):
    runs, _ = reports
    dataset, faces = hidden_face_dataset(SceneDataset(runs / "data-16"), 2, 3)
    plan = StepPlan(4, min_context=1, max_context=2, num_targets=3, num_steps=5)
    sampler = HiddenFaceBatchSampler(faces, dataset.views, plan)
    for items in sampler:
        for position, views in items:
            truth = faces_of(dataset.store, int(dataset.indices[position]))
            context, target = list(views[:-3]), list(views[-3:])
            shown = truth.seen[target].all(0) & truth.hidden[context].all(0)
            assert shown[:4].any(), (context, target)
    plan = StepPlan(2, min_context=1, max_context=2, num_targets=3, num_steps=1)
    loader = make_loader(dataset, plan, view_split="hidden-face", num_workers=0)
    assert next(iter(loader)).target_images.shape[1] == 3


def test_bad_view_splits_are_refused(reports):
    runs, _ = reports
    dataset = SceneDataset(runs / "data-16")
    with pytest.raises(ValueError, match="unknown view split 'hidden'"):
        make_loader(dataset, StepPlan(2), view_split="hidden")
    family = make_family("mnist-dice", image_size=16)
    with pytest.raises(ValueError, match="needs a stored MNIST-dice dataset"):
        make_loader(family, StepPlan(2, min_context=1), view_split="hidden-face")
    _, faces = hidden_face_dataset(dataset, 2, 3)
    with pytest.raises(ValueError, match="min_context >= 1"):
        HiddenFaceBatchSampler(faces, 12, StepPlan(2, max_context=2, num_targets=3))


def batches(seed: int = 0) -> tuple[QueryBatch, list[QueryBatch], QueryBatch]:
    """A random batch with 3 distinct targets, each of its targets alone, and its first target
    repeated 3 times (2 scenes, 2 context views, 16x16)."""
    g = torch.Generator().manual_seed(seed)
    ctx, vc = torch.rand(2, 2, 3, 16, 16, generator=g), torch.randn(2, 2, 7, generator=g)
    tgt, vt = torch.rand(2, 3, 3, 16, 16, generator=g), torch.randn(2, 3, 7, generator=g)
    three = QueryBatch.full_context(ctx, vc, tgt, vt)
    singles = [
        QueryBatch.full_context(ctx, vc, tgt[:, t : t + 1], vt[:, t : t + 1]) for t in range(3)
    ]
    copies = QueryBatch.full_context(
        ctx, vc, tgt[:, :1].repeat(1, 3, 1, 1, 1), vt[:, :1].repeat(1, 3, 1)
    )
    return three, singles, copies


def test_gqn_3_target_kl_is_the_sum_of_its_per_target_kls():
    # one DRAW step: each target's KL is a function of its inputs, no sampled z before it
    torch.manual_seed(0)
    net = GQN(replace(GQN.tiny_config(), num_steps=1)).eval()
    three, singles, _ = batches()
    kl_3 = dice_runs.elbo_terms(net, three, 0.5, seed=0).kl
    per_target = [dice_runs.elbo_terms(net, b, 0.5, seed=0).kl for b in singles]
    assert torch.allclose(kl_3, sum(per_target), rtol=1e-5)
    assert (per_target[0] > 0).all()


def test_cgqn_shares_one_latent_whatever_the_targets():
    torch.manual_seed(0)
    net = CGQN(CGQN.tiny_config()).eval()
    _, singles, copies = batches()
    one = dice_runs.elbo_terms(net, singles[0], 0.5, seed=3)
    repeated = dice_runs.elbo_terms(net, copies, 0.5, seed=3)
    assert set(repeated.kl_groups) == {"scene"}
    assert repeated.kl_groups["scene"].shape == one.kl_groups["scene"].shape == (2, 2)
    # the same target 3 times: one KL, not 3; one z renders the 3 copies alike
    assert torch.allclose(repeated.kl, one.kl, rtol=1e-4)
    assert (one.kl > 0).all()
    nll = repeated.nll_per_target
    assert torch.allclose(nll, one.nll_per_target.expand(2, 3), rtol=1e-4)
