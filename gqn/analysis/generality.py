"""``gqn analyze generality``: the three tests of thesis §5.3 on scenes rendered for the purpose.

The thesis tests Shepard-Metzler-5 models on (§5.3.1, fig 5.16-5.19) grayscale versions of test
scenes, (§5.3.2, fig 5.20) objects of one uniform solid colour without block borders or shading,
and (§5.3.3, fig 5.21-5.22) 7-part objects (SSIM over 32 scenes: 0.742 model 0, 0.763 model 2,
0.686 model 5). Here every test uses the same held-out scene numbers of the store:

- ``in_distribution``: the store's held-out scenes as they are;
- ``grayscale``: the same frames, luminance Y = 0.299 R + 0.587 G + 0.114 B in all channels;
- ``uniform_colour``: the same objects and cameras re-rendered with every cube in one colour and
  flat shading (:meth:`gqn.data.scenes.ShepardMetzler.render_uniform`);
- ``parts_P``: objects of P = parts + 2 cubes (7 for a 5-part store), same cameras' law.

Each is scored with the protocol of :func:`gqn.eval.evaluate.evaluate` at one K (query = view
perm[0], context = the next K), so prior sample, prior mean, best-of-N, reconstruction and the
two baselines sit side by side. The figure follows the thesis' layout: per scene, truth and
prior sample for each test.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gqn.analysis.common import (
    FramesDataset,
    Inputs,
    context_size,
    render,
    require_scenes,
)
from gqn.eval.evaluate import evaluate, load_scenes
from gqn.viz.grids import comparison_grid

HELP = "thesis §5.3: grayscale, uniform-colour and (parts+2)-part scenes vs in-distribution"
CAMERA = True
LUMA = np.array([0.299, 0.587, 0.114])
METHODS = (
    "prior_sample",
    "prior_mean",
    "best_of_n",
    "reconstruction",
    "nearest_view",
    "mean_image",
)
FIGURE_ROWS = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, default=64, help="held-out scenes (default 64)")
    parser.add_argument("--context", type=int, default=None, help="context views K per scene")
    parser.add_argument("--samples", type=int, default=8, help="prior samples per query (8)")
    parser.add_argument("--seed", type=int, default=0, help="protocol seed (default 0)")


def grayscale(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (..., 3) -> their luminance (BT.601) in all three channels."""
    y = np.rint(frames.astype(np.float64) @ LUMA).clip(0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


def variant_scenes(inputs: Inputs, n: int) -> dict[str, Any]:
    """{test name: dataset} of the first ``n`` held-out scenes in each version."""
    family, seed = inputs.family()
    if family.name != "shepard-metzler":
        raise ValueError(
            f"gqn analyze generality: the thesis' tests are on Shepard-Metzler objects; store "
            f"{inputs.data} holds {family.name!r} scenes"
        )
    held_out = [inputs.test[i] for i in range(n)]
    frames = np.stack([f.numpy() for f, _ in held_out])
    poses = np.stack([p.numpy() for _, p in held_out])
    indices = inputs.test.indices[:n].tolist()
    more = dataclasses.replace(family, parts=family.parts + 2)
    return {
        "in_distribution": inputs.test,
        "grayscale": FramesDataset(grayscale(frames), poses),
        "uniform_colour": FramesDataset(*family.render_uniform(seed, indices)),
        f"parts_{more.parts}": FramesDataset(*more.render_scenes(seed, indices)),
    }


@torch.no_grad()
def samples(inputs: Inputs, dataset: Any, k: int, seed: int, rows: int) -> tuple[torch.Tensor, ...]:
    """Truth (m, c, s, s) and one prior sample at the query view of the first ``rows`` scenes."""
    images, viewpoints = load_scenes(dataset, rows, seed)
    r = inputs.model.represent(images[:, 1 : k + 1], viewpoints[:, 1 : k + 1])  # renders r only
    return images[:, 0], render(inputs.model, r, viewpoints[:, :1], 1, seed)[:, 0, 0]


def run(inputs: Inputs, options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Evaluate the four versions of the held-out scenes; the figures."""
    n = require_scenes("generality", inputs.test, options.scenes, 1)
    k = context_size(inputs, options.context)
    if k > inputs.test.views - 1:
        raise ValueError(f"--context must lie in 1..{inputs.test.views - 1}")
    train_mean = inputs.train_mean()
    tests, columns = {}, []
    for name, dataset in variant_scenes(inputs, n).items():
        result = evaluate(
            inputs.model,
            dataset,
            train_mean,
            inputs.sigma,
            num_scenes=n,
            num_samples=options.samples,
            seed=options.seed,
            ks=[k],
        )
        row = result["rows"][0]
        tests[name] = {
            "nll_nats": row["nll_nats"],
            "kl_nats": row["kl_nats"],
            **{m: row["methods"][m] for m in METHODS},
        }
        columns += samples(inputs, dataset, k, options.seed, min(FIGURE_ROWS, n))
    comparison_grid(columns, scale=3).save(out / "generality.png")
    _bars(tests, out / "generality_metrics.png")
    base = tests["in_distribution"]["prior_sample"]
    return {
        "num_scenes": n,
        "context": k,
        "num_samples": options.samples,
        "tests": tests,
        "ssim_ratio": {t: v["prior_sample"]["ssim"] / base["ssim"] for t, v in tests.items()},
        "thesis_sm7_ssim": {"model 0": 0.742, "model 2": 0.763, "model 5": 0.686},
    }


def _bars(tests: dict[str, Any], path: Path) -> None:
    """SSIM and PSNR per test: prior sample, prior mean and the baselines."""
    shown = ("prior_sample", "prior_mean", "nearest_view", "mean_image")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(len(tests))
    for ax, metric in zip(axes, ("ssim", "psnr"), strict=True):
        for i, method in enumerate(shown):
            ax.bar(x + 0.2 * i, [t[method][metric] for t in tests.values()], 0.2, label=method)
        ax.set_xticks(x + 0.3, list(tests), fontsize=8)
        ax.set_ylabel(metric.upper())
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# Generality (thesis §5.3)",
        "",
        f"{record['num_scenes']} held-out scenes per test, K = {record['context']} context "
        f"views, {record['num_samples']} prior samples. Thesis (SM7, 32 scenes, 64x64): SSIM "
        "0.742 / 0.763 / 0.686 for models 0 / 2 / 5.",
        "",
        "| test | sample SSIM | sample PSNR | mean SSIM | best-of-N SSIM | recon SSIM | "
        "nearest view SSIM | mean image SSIM | SSIM / in-distribution |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in record["tests"].items():
        lines.append(
            f"| {name} | {t['prior_sample']['ssim']:.3f} | {t['prior_sample']['psnr']:.2f} | "
            f"{t['prior_mean']['ssim']:.3f} | {t['best_of_n']['ssim']:.3f} | "
            f"{t['reconstruction']['ssim']:.3f} | {t['nearest_view']['ssim']:.3f} | "
            f"{t['mean_image']['ssim']:.3f} | {record['ssim_ratio'][name]:.2f} |"
        )
    lines += [
        "",
        "Columns, per test in the order of the table: truth | one prior sample (thesis layout, "
        "figs 5.19, 5.20, 5.22).",
        "",
        "![generality](generality.png)",
        "",
        "![metrics](generality_metrics.png)",
        "",
    ]
    return "\n".join(lines)
