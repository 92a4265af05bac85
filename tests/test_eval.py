"""gqn eval: best-of-N, nearest-view baseline, and the whole command on a tiny checkpoint."""

import json
import math

import pytest
import torch

from gqn.cli import main
from gqn.data.dataset import open_split
from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.eval.baselines import mean_image, nearest_view, nearest_view_index
from gqn.eval.evaluate import METHODS, best_of_n, evaluate, paired_difference
from gqn.models import GQN
from gqn.run_config import load_run_config
from gqn.train.checkpoint import checkpoint_path, save_checkpoint
from gqn.typed_config import to_dict
from gqn.viewpoint import look_at_origin, pose_to_viewpoint

VIEWS = 4
TINY = [
    "model.image_size=32",
    "model.r_channels=16",
    "model.hidden_channels=8",
    "model.canvas_channels=8",
    "model.num_steps=2",
    "data.test_fraction=0.5",
]


def make_store(path, scenes=8, views=VIEWS):
    family = make_family("shepard-metzler", image_size=32, views=views)
    return generate_dataset(family, path, scenes, progress=False)


def make_checkpoint(run_dir, data):
    """A checkpoint of an untrained tiny GQN in the trainer's format."""
    config = load_run_config(None, [*TINY, f"data.path={data}", f"out_dir={run_dir}"])
    torch.manual_seed(0)
    model = GQN(config.model)
    with torch.no_grad():  # centre the untrained outputs in [0, 1] so clamping keeps them varied
        model.draw.observation.conv.bias.fill_(0.5)
    state = {
        "config": to_dict(config),
        "model": model.state_dict(),
        "step": 0,
        "model_class": "GQN",
    }
    return save_checkpoint(checkpoint_path(run_dir, 0), state)


@pytest.fixture(scope="module")
def store_and_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = make_store(root / "data")
    return data, make_checkpoint(root / "run", data)


def test_prior_sample_scores_each_sample_alone_then_averages():
    from gqn.eval.evaluate import _scores

    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 16, 16, generator=g)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    pair = _scores(torch.stack([a, b], dim=1), target)
    alone_a, alone_b = _scores(a, target), _scores(b, target)
    for key in ("mse", "psnr", "ssim"):
        torch.testing.assert_close(pair[key], (alone_a[key] + alone_b[key]) / 2)
    assert pair["ms_ssim"] is None  # 16x16: n/a, not averaged


def test_best_of_n_picks_min_mse_sample():
    target = torch.zeros(2, 3, 4, 4)
    samples = torch.stack(
        [
            torch.stack([torch.full((3, 4, 4), v) for v in vals])
            for vals in ((0.5, 0.1, 0.3), (0.2, 0.9, -0.05))
        ]
    )
    best = best_of_n(samples, target)
    assert torch.allclose(best[0], torch.full((3, 4, 4), 0.1))
    assert torch.allclose(best[1], torch.full((3, 4, 4), -0.05))


def test_nearest_view_picks_closest_pose():
    angles = torch.tensor([0.0, 1.5, 3.0, -1.5])
    ring = torch.stack([3 * angles.cos(), 3 * angles.sin(), torch.zeros(4)], -1)
    ctx = pose_to_viewpoint(look_at_origin(ring))[None]
    images = torch.arange(4.0)[None, :, None, None, None].expand(1, 4, 3, 2, 2)
    for query_angle, expected in ((0.2, 0), (1.2, 1), (2.7, 2), (-1.0, 3), (math.pi, 2)):
        q = torch.tensor([[3 * math.cos(query_angle), 3 * math.sin(query_angle), 0.0]])
        qv = pose_to_viewpoint(look_at_origin(q))
        assert nearest_view_index(ctx, qv).item() == expected
        assert nearest_view(images, ctx, qv)[0, 0, 0, 0].item() == expected
    mask = torch.tensor([[False, True, True, True]])
    q = pose_to_viewpoint(look_at_origin(torch.tensor([[3.0, 0.1, 0.0]])))
    assert nearest_view_index(ctx, q, mask).item() != 0


def test_mean_image_is_pixel_mean(store_and_checkpoint):
    data, _ = store_and_checkpoint
    ds = open_split(data, "train", 0.5)
    expected = torch.stack([ds[i][0].float() for i in range(len(ds))]).mean((0, 1)) / 255
    assert torch.allclose(mean_image(ds), expected.permute(2, 0, 1), atol=1e-5)


def test_evaluate_rows_and_fixed_protocol(store_and_checkpoint):
    data, _ = store_and_checkpoint
    torch.manual_seed(0)
    from gqn.models.loading import load_model

    model, _ = load_model(store_and_checkpoint[1])
    test = open_split(data, "test", 0.5)
    mean = torch.full((3, 32, 32), 0.5)
    a = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=3, seed=1)
    b = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=3, seed=1)
    assert [r["k"] for r in a["rows"]] == list(range(1, VIEWS))
    assert a["rows"] == b["rows"]  # fixed, seeded protocol
    for row in a["rows"]:
        m = row["methods"]
        assert set(m) == set(METHODS)
        assert m["best_of_n"]["mse"] <= m["prior_sample"]["mse"]  # the min <= the mean
        # Jensen (samples come clamped to [0, 1] from generate, so clamping the mean is a no-op):
        # the MSE of the samples' pixel mean is at most the samples' mean MSE
        assert m["prior_mean"]["mse"] <= m["prior_sample"]["mse"] + 1e-9
        assert m["mean_image"] == a["rows"][0]["methods"]["mean_image"]  # no dependence on K
        assert m["reconstruction"]["ms_ssim"] is None  # 32x32: n/a
    with pytest.raises(ValueError, match="context sizes"):
        evaluate(model, test, mean, 0.7, num_scenes=2, ks=[VIEWS])


def test_other_pose_control_separates_a_pose_blind_model_from_a_renderer(
    store_and_checkpoint, monkeypatch
):
    """``prior_mean_other_pose`` renders at another view's pose. A renderer that returns the true
    image of any pose scores perfectly in ``prior_mean`` and worse in the control; a model that
    ignores the pose scores the same in both. The two renderings use separate noise."""
    data, ckpt = store_and_checkpoint
    from gqn.eval.evaluate import load_scenes
    from gqn.models.loading import load_model

    model, _ = load_model(ckpt)
    test = open_split(data, "test", 0.5)
    images, viewpoints = load_scenes(test, 3, 1)
    flat_images, flat_viewpoints = images.flatten(0, 1), viewpoints.flatten(0, 1)
    calls = []

    # stubs of prior_means, what generate calls: viewpoints (b, n, d) -> (b, S, n, 3, 32, 32)
    def oracle(r, query_v, num_samples, generator):
        calls.append((query_v[:, 0], generator))
        index = (query_v[:, :, None] - flat_viewpoints[None, None]).abs().sum(-1).argmin(-1)
        return flat_images[index][:, None].expand(-1, num_samples, -1, -1, -1, -1)

    def pose_blind(r, query_v, num_samples, generator):
        b, n, _ = query_v.shape
        return r.mean((1, 2, 3)).view(b, 1, 1, 1, 1, 1).expand(-1, num_samples, n, 3, 32, 32)

    mean = torch.full((3, 32, 32), 0.5)
    for stub, blind in ((oracle, False), (pose_blind, True)):
        monkeypatch.setattr(model, "prior_means", stub)
        # batches of 2 scenes: the paired gap gathers its queries across batches
        result = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=2, seed=1, batch_size=2)
        for row in result["rows"]:
            m, gap = row["methods"], row["pose_gap"]
            control, prior = m["prior_mean_other_pose"], m["prior_mean"]
            if blind:
                assert control == prior
                assert gap == {"psnr_db": 0.0, "psnr_db_se": 0.0, "ssim": 0.0, "ssim_se": 0.0}
            else:
                assert prior["mse"] == 0.0 and control["mse"] > 1e-3
                assert gap["psnr_db"] == pytest.approx(prior["psnr"] - control["psnr"])
                assert gap["ssim"] == pytest.approx(prior["ssim"] - control["ssim"])
                assert gap["psnr_db"] > 0 and gap["psnr_db_se"] > 0
    (query_v, prior_noise), (other_v, control_noise) = calls[:2]
    assert prior_noise is not control_noise and not torch.equal(query_v, other_v)
    torch.testing.assert_close(other_v, viewpoints[:2, -1])  # the first batch: 2 scenes


def test_a_noise_seed_redraws_the_samples_of_the_same_queries(store_and_checkpoint):
    from gqn.models.loading import load_model

    model, _ = load_model(store_and_checkpoint[1])
    test = open_split(store_and_checkpoint[0], "test", 0.5)
    mean = torch.full((3, 32, 32), 0.5)
    run = dict(num_scenes=3, num_samples=2, seed=1, ks=[1])
    base = evaluate(model, test, mean, 0.7, **run)
    assert evaluate(model, test, mean, 0.7, **run, noise_seed=1)["rows"] == base["rows"]
    other = evaluate(model, test, mean, 0.7, **run, noise_seed=5)
    (a,), (b,) = base["rows"], other["rows"]
    for fixed in ("nearest_view", "mean_image"):  # the same queries and context views
        assert a["methods"][fixed] == b["methods"][fixed]
    assert a["methods"]["prior_sample"] != b["methods"]["prior_sample"]
    assert other["noise_seed"] == 5 and other["seed"] == 1


def test_paired_difference_is_the_mean_and_standard_error_of_the_differences():
    mean, se = paired_difference([3.0, 4.0, 6.0, 7.0], [2.0, 2.0, 3.0, 3.0])  # d = 1, 2, 3, 4
    assert mean == 2.5
    assert se == pytest.approx(math.sqrt(5 / 3) / 2)  # s = sqrt(5/3) (n - 1), over sqrt(4)
    assert paired_difference([1.0], [0.5]) == (0.5, None)


def test_a_row_does_not_depend_on_the_other_ks(store_and_checkpoint):
    from gqn.models.loading import load_model

    model, _ = load_model(store_and_checkpoint[1])
    test = open_split(store_and_checkpoint[0], "test", 0.5)
    mean = torch.full((3, 32, 32), 0.5)
    both = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=2, seed=1, ks=[1, 2])
    alone = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=2, seed=1, ks=[2])
    assert both["rows"][1] == alone["rows"][0]
    other_seed = evaluate(model, test, mean, 0.7, num_scenes=3, num_samples=2, seed=2, ks=[2])
    assert (
        other_seed["rows"][0]["methods"]["prior_mean"] != alone["rows"][0]["methods"]["prior_mean"]
    )


def test_eval_cli_writes_outputs(store_and_checkpoint, tmp_path, capsys):
    data, ckpt = store_and_checkpoint
    out = tmp_path / "eval"
    rc = main(
        [
            "eval",
            str(ckpt),
            "--data",
            str(data),
            "--scenes",
            "3",
            "--samples",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["device"] == "cpu"
    assert [r["k"] for r in result["rows"]] == list(range(1, VIEWS))
    row = result["rows"][0]
    for key in ("nll_nats", "kl_nats", "nll_bits_per_dim", "kl_bits_per_dim"):
        assert math.isfinite(row[key])
    for method in METHODS:
        assert set(row["methods"][method]) == {"mse", "psnr", "ssim", "ms_ssim"}
    assert result["metrics"]["ssim"]["kernel_size"] == 11
    md = (out / "eval.md").read_text()
    assert md.count("| nearest_view |") == VIEWS - 1 and "n/a" in md
    gap = row["pose_gap"]
    assert f"| 1 | {gap['psnr_db']:+.2f} ± {gap['psnr_db_se']:.2f} | {gap['ssim']:+.3f} ± " in md
    for png in ("metrics_vs_k.png", "elbo_vs_k.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "reconstruction" in capsys.readouterr().out


def test_eval_cli_rejects_missing_checkpoint(tmp_path, capsys):
    rc = main(["eval", str(tmp_path / "nope.pt"), "--data", str(tmp_path)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_eval_cli_refuses_data_of_another_image_size(store_and_checkpoint, tmp_path, capsys):
    _, ckpt = store_and_checkpoint
    family = make_family("shepard-metzler", image_size=16, views=VIEWS)
    small = generate_dataset(family, tmp_path / "sm16", 4, progress=False)
    assert main(["eval", str(ckpt), "--data", str(small), "--out", str(tmp_path / "e")]) == 2
    assert "dataset images are 16x16, the model expects 32x32" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_eval_and_sample_on_cuda_without_a_gpu_are_refused(store_and_checkpoint, capsys):
    data, ckpt = store_and_checkpoint
    assert main(["eval", str(ckpt), "--data", str(data), "--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    sample = ["sample", str(ckpt), "--data", str(data), "--scene", "0", "--device", "cuda"]
    assert main(sample) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_eval_and_sample_run_on_cuda(store_and_checkpoint, tmp_path):
    data, ckpt = store_and_checkpoint
    out = tmp_path / "eval"
    args = ["--scenes", "2", "--samples", "2", "--out", str(out), "--device", "cuda"]
    assert main(["eval", str(ckpt), "--data", str(data), *args]) == 0
    assert json.loads((out / "eval.json").read_text())["device"].startswith("cuda")
    sample = ["sample", str(ckpt), "--data", str(data), "--scene", "0", "--frames", "2"]
    assert main([*sample, "--out", str(tmp_path / "s"), "--device", "cuda"]) == 0
