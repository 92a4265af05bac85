"""The outputs of ``gqn eval``: ``eval.json``, ``eval.md`` (settings, the ELBO and image-metric
tables) and the metric and ELBO plots per K, from the result dict of
:func:`gqn.eval.evaluate.evaluate`."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from gqn.eval import image_metrics
from gqn.io import atomic_write
from gqn.viz.plots import plot_elbo_vs_k, plot_metrics_vs_k


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


METRIC_DIGITS = {"mse": 4, "psnr": 2, "ssim": 3, "ms_ssim": 3}


def metrics_table(result: dict[str, Any], ks: list[int] | None = None) -> str:
    """Markdown table: one row per (K, method), columns MSE, PSNR (dB), SSIM, MS-SSIM."""
    lines = [
        "| K | method | MSE | PSNR (dB) | SSIM | MS-SSIM |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        if ks is not None and row["k"] not in ks:
            continue
        for method in result["methods"]:
            m = row["methods"][method]
            cells = [_fmt(m[key], METRIC_DIGITS[key]) for key in image_metrics.METRICS]
            lines.append(f"| {row['k']} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pose_gap_table(result: dict[str, Any]) -> str:
    """Markdown table of the pose gap per K: prior mean minus the other-pose control, paired per
    query, mean +- standard error (rows of results written before the gap was paired: n/a)."""
    lines = ["| K | pose gap PSNR (dB) | pose gap SSIM |", "|---:|---:|---:|"]
    for row in result["rows"]:
        gap = row.get("pose_gap")
        if gap is None:
            lines.append(f"| {row['k']} | n/a | n/a |")
            continue
        cells = [
            f"{gap[key]:+.{digits}f}"
            + ("" if gap[f"{key}_se"] is None else f" ± {gap[f'{key}_se']:.{digits}f}")
            for key, digits in (("psnr_db", 2), ("ssim", 3))
        ]
        lines.append(f"| {row['k']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def elbo_table(result: dict[str, Any]) -> str:
    """Markdown table of the ELBO terms per K (nats/image and bits/dim)."""
    lines = [
        "| K | NLL (nats/image) | KL (nats/image) | NLL (bits/dim) | KL (bits/dim) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['k']} | {row['nll_nats']:.1f} | {row['kl_nats']:.2f} | "
            f"{row['nll_bits_per_dim']:.4f} | {row['kl_bits_per_dim']:.5f} |"
        )
    return "\n".join(lines)


def markdown_report(result: dict[str, Any]) -> str:
    """The whole ``eval.md``: settings, the ELBO table and the metrics table."""
    ms = "3 scales, betas (0.0448, 0.2856, 0.3001), torchmetrics"
    if not result["ms_ssim_available"]:
        ms = f"n/a at {result['image_size']}x{result['image_size']} (3 scales need > 40 px)"
    return "\n".join(
        [
            "# Evaluation",
            "",
            f"- {result['num_scenes']} held-out scenes, {result['views']} views each, "
            f"{result['image_size']}x{result['image_size']}; one query view per scene, the same "
            "scenes and queries for every K; context sets nested.",
            f"- Prior: {result['num_samples']} samples per query (mean image of each sample); "
            "`prior_sample` = each sample scored alone (mean score), `prior_mean` = their "
            "pixel-wise mean, `best_of_n` = the sample of lowest MSE.",
            "- Control: `prior_mean_other_pose` = the mean of N prior samples rendered at the pose "
            "of another view of the same scene, scored against the query: a model that ignores "
            "the query pose scores as well here as `prior_mean`.",
            f"- ELBO terms at pixel sigma {result['sigma']:g}.",
            "- SSIM: Gaussian window 11, sigma 1.5, data range 1, valid window (pytorch-msssim); "
            f"PSNR = 10 log10(1/MSE), capped at {image_metrics.PSNR_CAP:.0f} dB; MS-SSIM: {ms}.",
            "- Baselines: `nearest_view` = the context image of the closest camera pose, "
            "`mean_image` = pixel-wise mean training image.",
            "",
            "## ELBO terms",
            "",
            elbo_table(result),
            "",
            "## Image metrics",
            "",
            metrics_table(result),
            "",
            "## Pose gap",
            "",
            "`prior_mean` minus `prior_mean_other_pose`, per query (paired), mean ± standard "
            "error over the queries: what the query pose adds, and whether it exceeds the noise.",
            "",
            pose_gap_table(result),
            "",
        ]
    )


def write_outputs(result: dict[str, Any], out: str | os.PathLike) -> dict[str, Path]:
    """Write ``eval.json``, ``eval.md``, ``metrics_vs_k.png`` and ``elbo_vs_k.png`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "eval.json",
        "markdown": out / "eval.md",
        "metrics_plot": out / "metrics_vs_k.png",
        "elbo_plot": out / "elbo_vs_k.png",
    }
    with atomic_write(paths["json"]) as f:  # a rerun trusts an eval.json it finds (chunk_scores)
        f.write((json.dumps(result, indent=2) + "\n").encode())
    paths["markdown"].write_text(markdown_report(result))
    plot_metrics_vs_k(result, paths["metrics_plot"])
    plot_elbo_vs_k(result, paths["elbo_plot"])
    return paths
