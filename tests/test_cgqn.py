"""Consistent GQN: the equations of seed 003 (§3, appendices A-B), pinned on tiny sizes, and
the shared train / resume / eval / sample path for a CGQN checkpoint."""

import json

import pytest
import torch
import yaml
from torch.distributions import Normal, kl_divergence

from gqn.batch import QueryBatch
from gqn.cli import main
from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.models import CGQN
from gqn.models.loading import find_latest, load_checkpoint, load_model

SIZE = 16


def tiny(seed: int = 0) -> CGQN:
    torch.manual_seed(seed)
    model = CGQN(CGQN.tiny_config())
    with torch.no_grad():  # untrained means centred in [0, 1]
        model.renderer.observation.conv.bias.fill_(0.5)
    return model.eval()


def batch(b: int = 2, k: int = 2, n: int = 3, seed: int = 0) -> QueryBatch:
    g = torch.Generator().manual_seed(seed)
    return QueryBatch.full_context(
        torch.rand(b, k, 3, SIZE, SIZE, generator=g),
        torch.randn(b, k, 7, generator=g),
        torch.rand(b, n, 3, SIZE, SIZE, generator=g),
        torch.randn(b, n, 7, generator=g),
    )


def test_one_latent_renders_every_target_of_a_sample(monkeypatch):
    """generate draws z once per (scene, sample), b * S rows, never per view; replacing that
    z changes all n views together, and the same z gives the same n views."""
    model, data = tiny(), batch(n=3)
    r = model.represent(data.context_images, data.context_viewpoints)
    drawn = []
    prior_pass = model.latent.prior_pass

    def record(r_s, generator=None):
        z = prior_pass(r_s, generator)
        drawn.append(z)
        return z

    monkeypatch.setattr(model.latent, "prior_pass", record)
    model.generate(r, data.target_viewpoints, 4)
    assert len(drawn) == 1 and drawn[0].shape[0] == 2 * 4
    z = drawn[0][::4]  # (b, z_ch, H, W): sample 0 of each scene
    a = model.render(r, z, data.target_viewpoints)
    b = model.render(r, z + 1.0, data.target_viewpoints)
    assert torch.equal(a, model.render(r, z, data.target_viewpoints))
    changed = (a - b).abs().flatten(2).amax(2)  # (b, n)
    assert (changed > 1e-4).all()


def test_renderer_is_deterministic_given_z():
    model, data = tiny(), batch()
    r = model.represent(data.context_images, data.context_viewpoints)
    z = torch.randn(2, model.latent_channels, SIZE // 4, SIZE // 4)
    torch.manual_seed(1)
    a = model.render(r, z, data.target_viewpoints)
    torch.manual_seed(2)
    assert torch.equal(a, model.render(r, z, data.target_viewpoints))


def posterior_kl(model: CGQN, data: QueryBatch) -> torch.Tensor:
    torch.manual_seed(3)
    return model.elbo(data, 0.7).kl_groups["scene"]


def test_posterior_sees_the_valid_targets_only():
    model, data = tiny(), batch(n=3)
    data.target_mask[:, 2] = False
    kl = posterior_kl(model, data)
    valid, masked = batch(n=3), batch(n=3)
    for edited in (valid, masked):
        edited.target_mask[:, 2] = False
    valid.target_images[:, 0] = 1 - valid.target_images[:, 0]
    masked.target_images[:, 2] = 1 - masked.target_images[:, 2]
    assert not torch.allclose(posterior_kl(model, valid), kl)
    assert torch.equal(posterior_kl(model, masked), kl)


def test_kl_is_the_closed_form_of_q_against_p_step_by_step():
    """One KL group "scene" of nt steps, each KL[q_l || p_l] of the heads' Gaussians as
    torch.distributions computes it, counted once per scene (not per target)."""
    model, data = tiny(), batch(n=3)
    heads = {"prior": [], "posterior": []}
    for name in heads:
        getattr(model.latent, f"{name}_head").register_forward_hook(
            lambda _m, _i, out, name=name: heads[name].append(out)
        )
    terms = model.elbo(data, 0.7)
    assert list(terms.kl_groups) == ["scene"]
    kl = terms.kl_groups["scene"]
    assert kl.shape == (2, model.config.num_steps)
    for step, (p, q) in enumerate(zip(heads["prior"], heads["posterior"], strict=True)):
        expected = kl_divergence(Normal(*q), Normal(*p)).flatten(1).sum(1)
        torch.testing.assert_close(kl[:, step], expected)
    torch.testing.assert_close(terms.kl, kl.sum(1))


def test_elbo_sums_the_nll_of_valid_targets_and_one_kl():
    model, data = tiny(), batch(n=3)
    data.target_mask[0, 1:] = False
    torch.manual_seed(4)
    terms = model.elbo(data, 0.5)
    log_p = Normal(terms.mean, 0.5).log_prob(data.target_images).flatten(2).sum(2)  # (b, n)
    nll = -(log_p * data.target_mask).sum(1)
    torch.testing.assert_close(terms.nll, nll)
    torch.testing.assert_close(terms.loss, (nll + terms.kl).mean())


def test_kl_is_counted_once_per_scene_whatever_the_number_of_targets():
    """Three copies of one target tell the posterior nothing more (mean aggregate): the KL of
    the scene latent is the KL with one target, as the paper's consistency analysis expects."""
    model, one = tiny(), batch(n=1)
    three = QueryBatch.full_context(
        one.context_images,
        one.context_viewpoints,
        one.target_images.expand(-1, 3, -1, -1, -1),
        one.target_viewpoints.expand(-1, 3, -1),
    )
    torch.manual_seed(4)
    kl_one = model.elbo(one, 0.5).kl
    torch.manual_seed(4)
    torch.testing.assert_close(model.elbo(three, 0.5).kl, kl_one)


TINY_RUN = {
    "model": {
        "name": "cgqn",
        "image_size": SIZE,
        "num_steps": 1,
        "nf_to_hidden": 4,
        "nf_enc": 4,
        "nf_to_obs": 4,
        "nf_dec": 4,
        "nf_z": 2,
        "kernel_size": 3,
    },
    "data": {
        "family": "shepard-metzler",
        "family_params": {"image_size": SIZE, "views": 4, "parts": 2},
        "batch_size": 2,
        "num_targets": 2,
        "max_context": 2,
        "num_workers": 0,
        "preview_scenes": 1,
        "test_fraction": 0.5,
    },
    "optim": {
        "max_steps": 2,
        "sigma_schedule": "piecewise",
        "sigma_values": [2.0, 0.2, 0.4, 0.9],
        "sigma_durations": [100_000, 50_000, 50_000],
        "sigma_scale": 1e-5,
    },
    "log": {"every": 1, "image_every": 10, "checkpoint_every": 1, "progress": False},
    "device": "cpu",
}


def test_cgqn_trains_resumes_evaluates_and_samples_through_the_shared_cli(tmp_path, capsys):
    cfg = tmp_path / "cgqn.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_RUN, "log": {**TINY_RUN["log"], "tensorboard": False}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run)]) == 0
    resume = ["train", "--resume", "--config", str(cfg), "--out", str(run)]
    assert main([*resume, "optim.max_steps=3"]) == 0
    state = load_checkpoint(run, resume=True)
    assert state["step"] == 3 and state["schedules"]["sigma"]["kind"] == "piecewise"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["sigma"] for r in rows if "sigma" in r] == [0.2, 0.4, 0.9]  # after steps 1-3
    assert {"kl_scene_nats", "kl_step_0"} <= set(rows[0])
    model, _ = load_model(run, models=("cgqn",))
    assert isinstance(model, CGQN)
    with pytest.raises(ValueError, match="holds a 'cgqn' model; this command needs one of"):
        load_model(run, models=("gqn",))
    data = generate_dataset(
        make_family("shepard-metzler", image_size=SIZE, views=4), tmp_path / "d", 4, progress=False
    )
    ckpt = str(find_latest(run))
    args = ["--scenes", "2", "--samples", "2", "--device", "cpu"]
    assert main(["eval", ckpt, "--data", str(data), *args, "--out", str(tmp_path / "e")]) == 0
    sample = ["sample", ckpt, "--data", str(data), "--scene", "0", "--frames", "2"]
    assert main([*sample, "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "samples.png").exists()
    # a GQN config pointed at this run: refused by name, not by a wall of differing keys
    gqn_cfg = tmp_path / "gqn.yaml"
    gqn_cfg.write_text(yaml.safe_dump({**TINY_RUN, "model": {"image_size": SIZE}}))
    assert main(["train", "--resume", "--config", str(gqn_cfg), "--out", str(run)]) == 2
    assert "holds a 'cgqn' model but the config trains model.name='gqn'" in capsys.readouterr().err


def test_a_camera_model_given_timestamps_names_both_kinds(tmp_path, capsys):
    cfg = tmp_path / "cgqn.yaml"
    cfg.write_text(yaml.safe_dump(TINY_RUN))
    out = ["--out", str(tmp_path / "r")]
    assert main(["train", "--config", str(cfg), *out, "model.viewpoint=time"]) == 2
    err = capsys.readouterr().err
    assert "trained on 'time' viewpoints" in err and "has 'camera' viewpoints" in err
