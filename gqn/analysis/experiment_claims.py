"""The seeds' claims that the ``gqn experiment`` commands decide (CGQN narratives and MNIST dice,
seed 003; the multi-scale comparison, seed 004), appended to :data:`gqn.analysis.claims.CLAIMS`.

Each reads the ``NAME.json`` its experiment wrote (``gqn experiment NAME --out DIR``; ``gqn
reproduce --out DIR`` looks there).
"""

from __future__ import annotations

from gqn.analysis.claims import Claim, Record


def _min_mse(record: Record, run: str) -> float:
    return record["final"][run]["min_mse"]


def _used_latent_ratio(record: Record) -> float:
    """CGQN's KL(3 targets) / KL(1 target), averaged over the seeds whose latent is used
    (KL given 1 target > 0.5 nats; a collapsed latent is trivially consistent); nan if none."""
    ratios = [r["ratio"] for r in record["runs"] if r["model"] == "cgqn" and r["kl_1"] > 0.5]
    return sum(ratios) / len(ratios) if ratios else float("nan")


def _final_neg_elbo(record: Record, model: str, setting: str = "piecewise") -> float:
    rows = [r for r in record["rows"] if r["model"] == model and r["setting"] == setting]
    return max(rows, key=lambda r: r["step"])["neg_elbo_nats"]


def _model(record: Record, number: int) -> Record:
    return record["models"][f"model{number}"]


def _ssim_gain_model2(record: Record) -> float:
    return (
        _model(record, 2)["final"]["prior_mean_ssim"]
        - _model(record, 0)["final"]["prior_mean_ssim"]
    )


def _kl_share_first_layer(record: Record) -> float:
    """Largest share of the final KL carried by the first layer among models 1, 2, 4, 6."""
    shares = []
    for n in (1, 2, 4, 6):
        kl = list(_model(record, n)["final"]["kl_per_layer_nats"].values())
        shares.append(kl[0] / max(sum(kl), 1e-9))
    return max(shares)


def _kl_trend_model3(record: Record) -> float:
    """Model 3's total held-out KL at the last evaluation over its largest KL before it."""
    kls = [p["kl_nats"] for p in _model(record, 3)["curve"]]
    return kls[-1] / max(max(kls[:-1], default=kls[-1]), 1e-9)


EXPERIMENT_CLAIMS: list[Claim] = [
    Claim(
        "cgqn-min-mse",
        "CGQN's min-MSE over 30 samples is below GQN's and the deterministic baseline's",
        "seed 003 §4.1, fig 5",
        "experiment:narratives-min-mse",
        lambda r: _min_mse(r, "ts-cgqn") - min(_min_mse(r, "ts-gqn"), _min_mse(r, "ts-det")),
        "min-MSE of CGQN minus the better of GQN and deterministic < 0",
        lambda r: _min_mse(r, "ts-cgqn") < min(_min_mse(r, "ts-gqn"), _min_mse(r, "ts-det")),
    ),
    Claim(
        "cgqn-consistent-frames",
        "one CGQN sample tells one story across its frames; GQN's frames disagree",
        "seed 003 §4.1, figs 3-4",
        "experiment:narratives-consistency",
        lambda r: (
            r["tasks"]["color-reaction"]["CGQN"]["agree"]
            - r["tasks"]["color-reaction"]["GQN"]["agree"]
        ),
        "Color Reaction: share of samples whose frames agree, CGQN minus GQN > 0.1, and CGQN "
        "above the frames-mixed control",
        lambda r: (
            (t := r["tasks"]["color-reaction"])["CGQN"]["agree"] - t["GQN"]["agree"] > 0.1
            and t["CGQN"]["agree"]
            > t["CGQN, frames mixed across samples (random control)"]["agree"]
        ),
    ),
    Claim(
        "dice-kl-consistent",
        "CGQN's KL is the same given 1 or 3 views of the unseen face (4.25 vs 4.19)",
        "seed 003 §4.2",
        "experiment:dice-kl-consistency",
        _used_latent_ratio,
        "KL(3 targets) / KL(1 target) of CGQN within 0.85-1.15 (seeds with a used latent)",
        lambda r: 0.85 <= _used_latent_ratio(r) <= 1.15,
    ),
    Claim(
        "dice-kl-factored-grows",
        "a factored model's (GQN's) KL grows with the number of targets",
        "seed 003 §4.2",
        "experiment:dice-kl-consistency",
        lambda r: r["summary"]["gqn"]["ratio"]["mean"],
        "GQN's KL(3 targets) / KL(1 target) > 2",
        lambda r: r["summary"]["gqn"]["ratio"]["mean"] > 2,
    ),
    Claim(
        "dice-elbo",
        "CGQN reaches a lower test negative ELBO over 3 targets than GQN",
        "seed 003 §4.2, fig 6",
        "experiment:dice-elbo",
        lambda r: _final_neg_elbo(r, "cgqn") - _final_neg_elbo(r, "gqn"),
        "final -ELBO (nats, piecewise sigma) of CGQN minus GQN's < 0",
        lambda r: _final_neg_elbo(r, "cgqn") < _final_neg_elbo(r, "gqn"),
    ),
    Claim(
        "multiscale-model2-quality",
        "model 2 matches or beats the one-layer GQN (model 0) in SSIM",
        "seed 004 §5.2, figs 5.1-5.5",
        "experiment:multiscale-compare",
        lambda r: (
            _model(r, 2)["final"]["prior_mean_ssim"] - _model(r, 0)["final"]["prior_mean_ssim"]
        ),
        "prior-mean SSIM of model 2 minus model 0's >= -0.01 (equal budgets)",
        lambda r: (
            _model(r, 2)["final"]["prior_mean_ssim"] - _model(r, 0)["final"]["prior_mean_ssim"]
            >= -0.01
        ),
    ),
    Claim(
        "multiscale-model2-cheaper",
        "model 2 trains in less time than model 0 (24.97 vs 38 GPU hours)",
        "seed 004 §5.2",
        "experiment:multiscale-compare",
        lambda r: _model(r, 2)["train_step_gflops"] / _model(r, 0)["train_step_gflops"],
        "FLOPs of a training step, model 2 / model 0 < 1 (machine-independent)",
        lambda r: _model(r, 2)["train_step_gflops"] < _model(r, 0)["train_step_gflops"],
    ),
    Claim(
        "multiscale-model3-kl",
        "model 3's KL fails to fall during training",
        "seed 004 §5.2",
        "experiment:multiscale-compare",
        _kl_trend_model3,
        "model 3's final held-out KL / its largest earlier KL >= 0.9",
        lambda r: _kl_trend_model3(r) >= 0.9,
    ),
    Claim(
        "multiscale-first-layers-idle",
        "the first layers of models 1, 2, 4, 6 are barely used",
        "seed 004 §5.2, figs 5.6-5.15",
        "experiment:multiscale-compare",
        _kl_share_first_layer,
        "largest share of the final KL in the first layer, models 1, 2, 4, 6 < 0.1",
        lambda r: _kl_share_first_layer(r) < 0.1,
    ),
]
