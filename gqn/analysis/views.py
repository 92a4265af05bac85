"""``gqn analyze views``: prediction quality against the number of context views K = 0 ... V-1.

The GQN paper (seeds 000/001: "the more viewpoints are provided, the more accurate the prediction
is likely to be") claims quality rises with K. This runs the protocol of
:func:`gqn.eval.evaluate.evaluate` (same scenes and query for every K, nested context sets, the
nearest-view and mean-image baselines; K = 0 has no nearest view) and states, per curve, whether
it rises with K >= 1: the value at the largest K beats the value at K = 1 by more than
:data:`TOLERANCE` (in the better direction) and the Spearman rank correlation of the curve with
K >= 1 exceeds :data:`MIN_RANK_CORRELATION`. The step from K = 0 (the prior without any view,
r = 0) to K = 1 is reported on its own: it shows that the model uses r at all, not that more
views help.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gqn.analysis.common import Inputs, require_scenes, require_views
from gqn.eval.evaluate import evaluate
from gqn.viz.eval_report import elbo_table, metrics_table
from gqn.viz.plots import plot_elbo_vs_k, plot_metrics_vs_k

HELP = "prediction quality (PSNR/SSIM, NLL) vs number of context views 0..V-1, with baselines"
CAMERA = True  # the nearest-view baseline and the query protocol read camera poses
# (method, metric, +1 if higher is better) of the curves whose rise is stated
CURVES = (
    ("prior_mean", "ssim", 1),
    ("prior_mean", "psnr", 1),
    ("best_of_n", "ssim", 1),
    ("reconstruction", "ssim", 1),
    (None, "nll_nats", -1),
)
TOLERANCE = {"ssim": 0.01, "psnr": 0.1, "nll_nats": 1.0}
MIN_RANK_CORRELATION = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default 100)")
    parser.add_argument("--samples", type=int, default=8, help="prior samples per query (8)")
    parser.add_argument(
        "--max-context", type=int, default=None, help="largest K (default: views - 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="protocol seed (default 0)")


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (no ties expected)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if len(x) < 2 or rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def curve(rows: list[dict[str, Any]], method: str | None, metric: str) -> list[float]:
    """A metric's values over the rows (K order); ``method`` None: an ELBO term."""
    return [row[metric] if method is None else row["methods"][method][metric] for row in rows]


def rises(ks: list[int], values: list[float], metric: str, sign: int) -> dict[str, Any]:
    """Whether a curve over ``ks`` (0, 1, ...) rises (improves) with K >= 1: the change from
    K = 1 to the last K (in the better direction), the rank correlation with K >= 1, the verdict,
    and the change from K = 0 to K = 1."""
    at = dict(zip(ks, values, strict=True))
    ks1 = [k for k in ks if k >= 1]
    change = sign * (at[ks1[-1]] - at[ks1[0]])
    rho = sign * rank_correlation(ks1, [at[k] for k in ks1])
    return {
        "k0": at.get(0),
        "k1": at[ks1[0]],
        "last": at[ks1[-1]],
        "improvement": change,
        "rank_correlation": rho,
        "rises": bool(change > TOLERANCE[metric] and rho > MIN_RANK_CORRELATION),
        "improvement_from_k0": None if 0 not in at else sign * (at[ks1[0]] - at[0]),
    }


def run(inputs: Inputs, options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Evaluate every K, write the figures; returns the record (``views.json``)."""
    views = inputs.test.views
    require_views("views", inputs.test, 3)
    n = require_scenes("views", inputs.test, options.scenes, 1)
    top = views - 1 if options.max_context is None else options.max_context
    if not 2 <= top <= views - 1:
        raise ValueError(
            f"--max-context must lie in 2..{views - 1} (a curve over K >= 1), got {top}"
        )
    result = evaluate(
        inputs.model,
        inputs.test,
        inputs.train_mean(),
        inputs.sigma,
        num_scenes=n,
        num_samples=options.samples,
        seed=options.seed,
        ks=list(range(0, top + 1)),
    )
    ks = [row["k"] for row in result["rows"]]
    result["curves"] = {
        f"{method or 'elbo'}.{metric}": rises(ks, curve(result["rows"], method, metric), metric, s)
        for method, metric, s in CURVES
    }
    result["rises"] = result["curves"]["prior_mean.ssim"]["rises"]
    plot_metrics_vs_k(result, out / "views_metrics.png")
    plot_elbo_vs_k(result, out / "views_elbo.png")
    return result


def markdown(record: dict[str, Any]) -> str:
    verdict = "rises" if record["rises"] else "does not rise"
    main = record["curves"]["prior_mean.ssim"]
    last = record["rows"][-1]["k"]
    lines = [
        "# Prediction quality vs context views",
        "",
        f"{record['num_scenes']} held-out scenes, one query each, {record['num_samples']} prior "
        f"samples; K = 0 ... {last}. Prior-mean SSIM goes from {main['k0']:.3f} (K = 0) to "
        f"{main['k1']:.3f} (K = 1) and {main['last']:.3f} (K = {last}): it **{verdict}** with "
        "K >= 1.",
        "",
        "| curve | K = 0 | K = 1 | last K | K 0 -> 1 | K 1 -> last | rank corr. (K >= 1) | rises |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, c in record["curves"].items():
        lines.append(
            f"| {name} | {c['k0']:.4g} | {c['k1']:.4g} | {c['last']:.4g} | "
            f"{c['improvement_from_k0']:+.4g} | {c['improvement']:+.4g} | "
            f"{c['rank_correlation']:+.2f} | {'yes' if c['rises'] else 'no'} |"
        )
    lines += [
        "",
        f"Improvements in the better direction (NLL: a fall). Rises: improvement from K = 1 to "
        f"the last K > {TOLERANCE} (per metric) and rank correlation with K >= 1 > "
        f"{MIN_RANK_CORRELATION}.",
        "",
        "![metrics vs K](views_metrics.png)",
        "",
        "![ELBO vs K](views_elbo.png)",
        "",
        elbo_table(record),
        "",
        metrics_table(record),
        "",
    ]
    return "\n".join(lines)
