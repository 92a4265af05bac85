"""The experiments' claims of ``gqn reproduce``: each number and verdict from a hand-made record."""

from __future__ import annotations

import json
import math

import pytest

from gqn.analysis.experiment_claims import EXPERIMENT_CLAIMS
from gqn.analysis.reproduce import CLAIMS, verdict

BY_NAME = {c.name: c for c in EXPERIMENT_CLAIMS}


def decide(name: str, record: dict) -> tuple[float, str]:
    row = verdict(BY_NAME[name], record)
    return row["value"], row["status"]


def test_every_experiment_claim_is_decided_by_reproduce():
    names = [c.name for c in CLAIMS]
    assert all(c.name in names for c in EXPERIMENT_CLAIMS) and len(set(names)) == len(names)
    assert {c.kind for c in EXPERIMENT_CLAIMS} == {"experiment"}


def test_min_mse_against_the_better_of_gqn_and_deterministic():
    final = {
        "ts-cgqn": {"min_mse": 0.02},
        "ts-gqn": {"min_mse": 0.03},
        "ts-det": {"min_mse": 0.025},
    }
    assert decide("cgqn-min-mse", {"final": final}) == (pytest.approx(-0.005), "holds")
    final["ts-det"]["min_mse"] = 0.01
    assert decide("cgqn-min-mse", {"final": final}) == (pytest.approx(0.01), "does not hold")


def test_consistency_needs_a_margin_over_gqn_and_the_control():
    control = "CGQN, frames mixed across samples (random control)"
    task = {"CGQN": {"agree": 0.9}, "GQN": {"agree": 0.6}, control: {"agree": 0.7}}
    record = {"tasks": {"color-reaction": task}}
    assert decide("cgqn-consistent-frames", record) == (pytest.approx(0.3), "holds")
    task[control]["agree"] = 0.95
    assert decide("cgqn-consistent-frames", record)[1] == "does not hold"


def test_dice_kl_ignores_collapsed_seeds():
    runs = [
        {"model": "cgqn", "kl_1": 0.002, "ratio": 0.5},  # collapsed: not counted
        {"model": "cgqn", "kl_1": 6.0, "ratio": 0.9},
        {"model": "cgqn", "kl_1": 4.0, "ratio": 1.1},
        {"model": "gqn", "kl_1": 8.0, "ratio": 3.0},
    ]
    assert decide("dice-kl-consistent", {"runs": runs}) == (pytest.approx(1.0), "holds")
    value, status = decide("dice-kl-consistent", {"runs": runs[:1]})
    assert math.isnan(value) and status == "does not hold"
    summary = {"gqn": {"ratio": {"mean": 2.9}}}
    assert decide("dice-kl-factored-grows", {"summary": summary}) == (2.9, "holds")


def test_dice_elbo_reads_the_last_step_of_the_piecewise_setting():
    rows = [
        {"model": "cgqn", "setting": "piecewise", "step": 600, "neg_elbo_nats": 100.0},
        {"model": "cgqn", "setting": "piecewise", "step": 300, "neg_elbo_nats": 50.0},
        {"model": "gqn", "setting": "piecewise", "step": 600, "neg_elbo_nats": 120.0},
        {"model": "gqn", "setting": "linear", "step": 900, "neg_elbo_nats": 10.0},
    ]
    assert decide("dice-elbo", {"rows": rows}) == (-20.0, "holds")


def _model(ssim, gflops, kl_layers, kls=(1.0, 1.0)):
    final = {"prior_mean_ssim": ssim, "kl_per_layer_nats": dict(enumerate(kl_layers))}
    return {"final": final, "train_step_gflops": gflops, "curve": [{"kl_nats": k} for k in kls]}


def test_multiscale_claims():
    models = {f"model{n}": _model(0.5, 10.0, [0.5, 9.5]) for n in range(7)}
    models["model0"] = _model(0.52, 20.0, [10.0])
    models["model2"] = _model(0.515, 12.0, [0.5, 9.5])
    models["model3"] = _model(0.5, 10.0, [5.0, 5.0], kls=(4.0, 10.0, 9.5))
    record = {"models": models}
    assert decide("multiscale-model2-quality", record) == (pytest.approx(-0.005), "holds")
    assert decide("multiscale-model2-cheaper", record) == (0.6, "holds")
    assert decide("multiscale-model3-kl", record) == (0.95, "holds")
    assert decide("multiscale-first-layers-idle", record) == (0.05, "holds")
    models["model4"] = _model(0.5, 10.0, [3.0, 7.0])
    assert decide("multiscale-first-layers-idle", record) == (0.3, "does not hold")
    models["model3"] = _model(0.5, 10.0, [5.0, 5.0], kls=(4.0, 10.0, 5.0))
    assert decide("multiscale-model3-kl", record) == (0.5, "does not hold")


def test_reproduce_finds_experiment_results_after_out(tmp_path):
    from gqn.analysis.reproduce import reproduce

    rows = [
        {"model": m, "setting": "piecewise", "step": 1, "neg_elbo_nats": v}
        for m, v in (("cgqn", 5.0), ("gqn", 7.0))
    ]
    results = tmp_path / "dice"
    results.mkdir()
    (results / "dice-elbo.json").write_text(json.dumps({"rows": rows}))
    out = tmp_path / "out"
    [row] = reproduce(["dice-elbo"], "unused", None, out, results=[tmp_path / "none", results])
    assert (row["value"], row["status"]) == (-2.0, "holds")
    [row] = reproduce(["dice-elbo"], "unused", None, out, results=[])
    assert row["status"].startswith("not measured")
