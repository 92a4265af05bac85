"""Matplotlib figures (Agg backend, PNG): metrics vs number of context views, loss curves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

METRIC_LABELS = {"mse": "MSE", "psnr": "PSNR (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM"}
METHOD_STYLES = {
    "reconstruction": dict(color="tab:green", marker="o"),
    "prior_sample": dict(color="tab:cyan", marker="v"),
    "prior_mean": dict(color="tab:blue", marker="s"),
    "best_of_n": dict(color="tab:purple", marker="^"),
    "prior_mean_other_pose": dict(color="tab:blue", marker=".", linestyle=":"),
    "nearest_view": dict(color="tab:gray", marker="x", linestyle="--"),
    "mean_image": dict(color="black", marker="+", linestyle=":"),
}


def save_figure(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (PNG; parent folders made) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_metrics_vs_k(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """One panel per available metric: each method's mean vs K (an ``eval.json`` dict)."""
    rows = result["rows"]
    ks = [row["k"] for row in rows]
    keys = [m for m in METRIC_LABELS if rows[0]["methods"]["reconstruction"][m] is not None]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for method in result["methods"]:
            ax.plot(
                ks,
                [row["methods"][method][key] for row in rows],
                label=method,
                **METHOD_STYLES.get(method, {}),
            )
        ax.set_xlabel("context views K")
        ax.set_ylabel(METRIC_LABELS[key])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{result['num_scenes']} held-out scenes, {result['num_samples']} prior samples")
    return save_figure(fig, path)


def plot_elbo_vs_k(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """NLL and KL (nats/image) vs K."""
    ks = [row["k"] for row in result["rows"]]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, label in zip(
        axes, ("nll_nats", "kl_nats"), ("NLL (nats/image)", "KL (nats/image)"), strict=True
    ):
        ax.plot(ks, [row[key] for row in result["rows"]], marker="o")
        ax.set_xlabel("context views K")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"ELBO terms at sigma {result['sigma']:g}")
    return save_figure(fig, path)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (run killed mid-write) is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_loss_curves(
    records: list[dict[str, Any]],
    path: str | os.PathLike,
    keys: tuple[str, ...] = ("nll_nats", "kl_nats"),
) -> Path:
    """One panel per key (e.g. NLL and KL in nats/image) vs ``step``, from training log records
    that hold ``step`` and the key; records without the key are skipped."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in records if "step" in r and r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True))
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)
