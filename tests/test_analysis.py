"""gqn analyze / gqn reproduce on tiny untrained models and tiny stores (16x16, 4 views)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from gqn.analysis import ANALYSES, algebra, default_options, run_analysis
from gqn.analysis import claims as claims_module
from gqn.analysis.claims import Claim
from gqn.analysis.common import NotApplicable, open_inputs, represent
from gqn.analysis.generality import LUMA, variant_scenes
from gqn.analysis.reproduce import reproduce
from gqn.cli import main
from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family, scene_rng
from gqn.models.registry import MODELS
from gqn.run_config import RunConfig
from gqn.train.checkpoint import checkpoint_path, save_checkpoint
from gqn.typed_config import to_dict

VIEWS = 4
# the smallest sizes each analysis accepts, so that the whole file stays within seconds
SMALL = {
    "views": dict(scenes=3, samples=2),
    "tsne": dict(scenes=4, views=3, sets=2, set_size=2),
    "algebra": dict(triples=2, samples=2, context=2),
    "interpolate": dict(pairs=1, frames=3, bank=3, context=2),
    "generality": dict(scenes=2, samples=2, context=2),
}


def make_checkpoint(run_dir, data, name="gqn", **model):
    """An untrained tiny model of registered ``name`` saved in the trainer's format."""
    cls = MODELS[name]
    config = RunConfig()
    config.model = dataclasses.replace(cls.tiny_config(), **model)
    config.data.path, config.data.test_fraction, config.data.max_context = str(data), 0.5, 2
    torch.manual_seed(0)
    state = {
        "config": to_dict(config),
        "model": cls(config.model).state_dict(),
        "step": 0,
        "model_class": cls.__name__,
    }
    return save_checkpoint(checkpoint_path(run_dir, 0), state)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    family = make_family("shepard-metzler", image_size=16, views=VIEWS)
    return generate_dataset(family, tmp_path_factory.mktemp("sm") / "data", 12, progress=False)


@pytest.fixture(scope="module")
def checkpoint(store, tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("run"), store)


def numbers(value):
    """Every int/float inside a JSON value."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.parametrize("name", list(ANALYSES))
def test_each_analysis_writes_figures_json_markdown_with_finite_numbers(
    name, store, checkpoint, tmp_path
):
    record = run_analysis(name, checkpoint, store, tmp_path, default_options(name, **SMALL[name]))
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert saved["analysis"] == name and "machine" in saved
    assert (tmp_path / f"{name}.md").read_text().startswith("# ")
    assert list(tmp_path.glob("*.png"))
    assert all(math.isfinite(x) for x in numbers(saved["options"]) + numbers(record) if x)
    if name == "views":  # K = 0 ... V - 1, both baselines, the nearest view only with context
        assert [row["k"] for row in record["rows"]] == list(range(VIEWS))
        assert record["rows"][0]["methods"]["nearest_view"]["ssim"] is None
        assert record["rows"][1]["methods"]["nearest_view"]["ssim"] is not None
        assert record["rows"][0]["methods"]["mean_image"]["ssim"] is not None
        assert isinstance(record["rises"], bool)
    if name == "tsne":  # the shuffled-label control is computed for both kinds of points
        for kind in record["kinds"].values():
            assert set(kind["r_space"]) >= {"silhouette_shuffled", "nn_same_scene_shuffled"}
    if name == "algebra":  # r(A) - r(B) + r(C) of the triples, measured against r(D)
        assert set(record["scores"]) == {"algebra", "C_alone", "A_alone", "D_itself"}
        inputs = open_inputs(name, checkpoint, store)
        x, model = algebra.scenes(inputs, record["triples"]), inputs.model
        r = {n: represent(model, im[:, :2], v[:, :2]) for n, (im, v) in x.items()}
        distance = lambda a: float((a - r["D"]).flatten(1).norm(dim=1).mean())  # noqa: E731
        expected = distance(r["A"] - r["B"] + r["C"]) / distance(r["C"])
        assert record["r_distance_to_D"]["algebra"] == pytest.approx(expected, rel=1e-5)
        assert record["r_distance_to_D"]["D_itself"] == 0
    if name == "interpolate":  # the cross-fade shares the end frames, not the middle ones
        inter, fade = (record["validity_per_pair"][k][0] for k in ("interpolation", "crossfade"))
        assert inter[0] == fade[0] and inter[-1] == fade[-1] and inter[1] != fade[1]
    if name == "generality":
        assert set(record["tests"]) == {
            "in_distribution", "grayscale", "uniform_colour", "parts_7"
        }  # fmt: skip


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"gqn"}))
def test_analyses_serve_every_registered_model(name, store, tmp_path):
    """Every model serves the analyses that render from r (views, generality); those that embed
    or combine r (here interpolation) serve the models with a per-scene code and refuse the
    others by name."""
    ckpt = make_checkpoint(tmp_path / "run", store, name)
    for analysis, small in (("views", dict(scenes=2, samples=1, max_context=2)),
                            ("generality", SMALL["generality"]),
                            ("interpolate", SMALL["interpolate"])):  # fmt: skip
        options = default_options(analysis, **small)
        if analysis == "interpolate" and not MODELS[name].scene_code:
            with pytest.raises(NotApplicable, match=f"model '{name}' keeps a per-view memory"):
                run_analysis(analysis, ckpt, store, tmp_path, options)
            continue
        record = run_analysis(analysis, ckpt, store, tmp_path, options)
        assert record["model"] == name


def test_reproduce_marks_analyses_that_do_not_apply(store, tmp_path, monkeypatch):
    ckpt = make_checkpoint(tmp_path / "run", store, "gqn-projective")
    monkeypatch.setattr("gqn.analysis.reproduce.default_options",
                        lambda name, **o: default_options(name, **SMALL[name]))  # fmt: skip
    (row,) = reproduce(["scene-algebra"], ckpt, store, tmp_path / "out")
    assert row["value"] is None
    assert row["status"].startswith("not applicable: this analysis embeds or combines r")


def test_algebra_triples_differ_in_one_property():
    family = make_family("shepard-metzler", image_size=16, views=3)
    (a, c), pa = family.render_scenes(0, [0, 1])
    (b, d), pb = family.render_mixed(0, [(0, 1), (1, 0)])
    mask = lambda x: x.max(-1) > 0  # noqa: E731 (the object's silhouette on black)
    assert (mask(a) == mask(b)).all() and (mask(c) == mask(d)).all()  # same object and cameras
    assert np.abs(a.astype(int) - b).mean() > 1 and np.abs(c.astype(int) - d).mean() > 1
    assert (pa[0] == pb[0]).all() and (pa[1] == pb[1]).all()
    assert not (mask(a) == mask(c)).all()
    rooms = make_family("rooms", image_size=16, views=2, min_objects=1)
    base, other = (rooms.build_scene(scene_rng("rooms", 0, i)) for i in (0, 1))
    mixed = rooms.mixed_scene(scene_rng("rooms", 0, 0), scene_rng("rooms", 0, 1))
    row = lambda r: (r[0], r[1].tolist(), r[3].tolist(), r[4].tolist())  # noqa: E731
    assert [row(r) for r in mixed.builder.rows[:5]] == [row(r) for r in base.builder.rows[:5]]
    assert [row(r) for r in mixed.builder.rows[5:]] == [row(r) for r in other.builder.rows[5:]]
    assert (mixed.poses == base.poses).all()


def test_generality_scenes_are_what_they_say(store, checkpoint):
    inputs = open_inputs("generality", checkpoint, store)
    tests = variant_scenes(inputs, 3)
    original = np.stack([inputs.test[i][0].numpy() for i in range(3)])
    gray = tests["grayscale"].frames.numpy()
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert np.abs(gray[..., 0] - original @ LUMA).max() <= 0.5
    uniform = tests["uniform_colour"].frames.numpy()
    for scene in uniform:  # background + one flat colour, on the original's silhouette
        assert len(np.unique(scene.reshape(-1, 3), axis=0)) == 2
    assert ((uniform.max(-1) > 0) == (original.max(-1) > 0)).all()
    seven, five = tests["parts_7"].frames.numpy(), original
    assert (seven.max(-1) > 0).sum() > (five.max(-1) > 0).sum()  # more cubes, more pixels
    family = make_family("shepard-metzler", image_size=16, parts=7)
    assert len(family.build_scene(scene_rng(family.name, 0, 0)).builder.rows) == 7


def test_bad_input_gives_one_line_errors(store, checkpoint, tmp_path, capsys, monkeypatch):
    def fails(argv, message):
        assert main([*argv, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err

    fails(["analyze", "views", str(tmp_path / "none.pt"), "--data", str(store)], "does not exist")
    fails(["analyze", "views", str(checkpoint), "--data", str(tmp_path / "no")], "store")
    fails(["analyze", "tsne", str(checkpoint), "--data", str(store), "--scenes", "2"],
          "at least 3 held-out scenes")  # fmt: skip
    fails(["reproduce", "no-such-claim", "--checkpoint", str(checkpoint)], "unknown claim")
    time_ckpt = make_checkpoint(tmp_path / "time", store, "gqn", viewpoint="time")
    monkeypatch.setattr("gqn.analysis.common.check_viewpoint_kinds", lambda *a: None)
    fails(["analyze", "algebra", str(time_ckpt), "--data", str(store)], "does not apply")
    monkeypatch.undo()
    narratives = (make_family("traveling-salesman", image_size=16), 0)
    monkeypatch.setattr("gqn.analysis.common.Inputs.family", lambda self: narratives)
    fails(["analyze", "algebra", str(checkpoint), "--data", str(store)], "cannot make triples")
    fails(["analyze", "generality", str(checkpoint), "--data", str(store)], "Shepard-Metzler")


def test_reproduce_decides_claims_and_reads_experiments(store, checkpoint, tmp_path, monkeypatch):
    extra = Claim(
        "fake-experiment", "an experiment's claim", "seed 003 fig 0", "experiment:fake",
        lambda r: r["gain"], "gain > 1", lambda r: r["gain"] > 1,
    )  # fmt: skip
    monkeypatch.setattr(claims_module, "CLAIMS", [*claims_module.CLAIMS, extra])
    monkeypatch.setattr("gqn.analysis.reproduce.CLAIMS", claims_module.CLAIMS)
    monkeypatch.setattr("gqn.analysis.reproduce.default_options",
                        lambda name, **o: default_options(name, **SMALL[name]))  # fmt: skip
    rows = reproduce(["tsne-clusters", "fake-experiment"], checkpoint, store, tmp_path)
    assert rows[0]["status"] in ("holds", "does not hold") and math.isfinite(rows[0]["value"])
    assert rows[1]["status"].startswith("not measured")
    (tmp_path / "fake.json").write_text(json.dumps({"gain": 2.5}))
    rows = reproduce(["fake-experiment"], checkpoint, store, tmp_path)
    assert rows == [dict(rows[0], value=2.5, status="holds")]
    saved = json.loads((tmp_path / "reproduce.json").read_text())
    assert saved["claims"] == rows and (tmp_path / "reproduce.md").exists()
