"""``gqn analyze tsne``: do representations of one scene cluster together?

The GQN paper (seeds 000/001/002): "t-SNE of scene representation vectors shows clear clustering
of images of the same scene despite remarkable changes in viewpoint". For N held-out scenes this
computes r (flattened) of single views (M per scene) and of view sets (``--sets`` random sets of
``--set-size`` views per scene), embeds each kind with scikit-learn's t-SNE (figure coloured by
scene), and measures the clustering where it lives, in r-space (and, for reference, in the 2-D
embedding):

- silhouette score (Euclidean; -1 ... 1, 0 = no cluster structure);
- nearest-neighbour same-scene rate: the fraction of points whose nearest other point belongs
  to the same scene (chance: (M - 1) / (N M - 1));

each against a control with the scene labels shuffled (mean over :data:`SHUFFLES` seeded
permutations): the same points, no scene structure.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gqn.analysis.common import Inputs, represent, require_scenes, require_views
from gqn.eval.evaluate import load_scenes

HELP = "t-SNE of r of single views and view sets, coloured by scene; cluster scores vs shuffled"
CAMERA = False
MIN_SCENES = 3
SHUFFLES = 10
MAX_PERPLEXITY = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, default=30, help="held-out scenes N (default 30)")
    parser.add_argument("--views", type=int, default=10, help="single views per scene M (10)")
    parser.add_argument("--set-size", type=int, default=3, help="views per view set (3)")
    parser.add_argument("--sets", type=int, default=5, help="view sets per scene (5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of views, sets, t-SNE (0)")


def nearest_neighbour_rate(points: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of the points (p, D) whose nearest other point has the same label."""
    from sklearn.metrics import pairwise_distances  # scikit-learn loads only for this analysis

    d = pairwise_distances(points)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


def cluster_scores(points: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """Silhouette and nearest-neighbour rate of ``points`` (p, D) under the scene ``labels``
    (p,) and under shuffled labels (the control, mean over :data:`SHUFFLES`)."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    shuffled = [rng.permutation(labels) for _ in range(SHUFFLES)]
    return {
        "silhouette": float(silhouette_score(points, labels)),
        "nn_same_scene": nearest_neighbour_rate(points, labels),
        "silhouette_shuffled": float(np.mean([silhouette_score(points, s) for s in shuffled])),
        "nn_same_scene_shuffled": float(
            np.mean([nearest_neighbour_rate(points, s) for s in shuffled])
        ),
    }


@torch.no_grad()
def representations(
    inputs: Inputs, images: torch.Tensor, viewpoints: torch.Tensor, options: argparse.Namespace
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"single views": (points (N M, D), labels), "view sets": (points (N sets, D), labels)}
    from images (N, V, c, s, s) and viewpoints (N, V, d)."""
    n, views = images.shape[:2]
    m = min(options.views, views)
    rng = np.random.default_rng(options.seed)
    single = represent(
        inputs.model, images[:, :m].flatten(0, 1)[:, None], viewpoints[:, :m].flatten(0, 1)[:, None]
    )
    picks = np.stack(
        [rng.choice(views, options.set_size, replace=False) for _ in range(n * options.sets)]
    ).reshape(n, options.sets, -1)
    rows = torch.arange(n)[:, None, None]
    sets = represent(
        inputs.model,
        images[rows, picks].flatten(0, 1),
        viewpoints[rows, picks].flatten(0, 1),
    )
    return {
        "single views": (single.flatten(1).numpy(), np.repeat(np.arange(n), m)),
        "view sets": (sets.flatten(1).numpy(), np.repeat(np.arange(n), options.sets)),
    }


def run(inputs: Inputs, options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """r of single views and of view sets, their t-SNE figure and cluster scores."""
    from sklearn.manifold import TSNE

    n = require_scenes("tsne", inputs.test, options.scenes, MIN_SCENES)
    require_views("tsne", inputs.test, 2)
    if not 1 <= options.set_size <= inputs.test.views or options.sets < 1 or options.views < 2:
        raise ValueError(
            f"gqn analyze tsne: need --views >= 2, --sets >= 1 and 1 <= --set-size <= "
            f"{inputs.test.views} (the store's views)"
        )
    images, viewpoints = load_scenes(inputs.test, n, options.seed)
    kinds = representations(inputs, images, viewpoints, options)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    record: dict[str, Any] = {"num_scenes": n, "kinds": {}}
    for ax, (kind, (points, labels)) in zip(axes, kinds.items(), strict=True):
        perplexity = min(MAX_PERPLEXITY, (len(points) - 1) / 3)
        embedding = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=options.seed
        ).fit_transform(points)
        record["kinds"][kind] = {
            "points": len(points),
            "dims": int(points.shape[1]),
            "perplexity": perplexity,
            "chance_nn_same_scene": float((np.sum(labels == 0) - 1) / (len(labels) - 1)),
            "r_space": cluster_scores(points, labels, options.seed),
            "tsne_space": cluster_scores(embedding, labels, options.seed),
        }
        ax.scatter(*embedding.T, c=labels % 20, cmap="tab20", s=12)
        ax.set_title(f"r of {kind} ({n} scenes)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "tsne.png", dpi=100)
    plt.close(fig)
    scores = record["kinds"]["single views"]["r_space"]
    record["nn_gain"] = scores["nn_same_scene"] - scores["nn_same_scene_shuffled"]
    return record


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# t-SNE of scene representations",
        "",
        f"{record['num_scenes']} held-out scenes; colours = scenes (20 colours, cycled).",
        "",
        "![t-SNE](tsne.png)",
        "",
        "| points | space | silhouette | shuffled | NN same scene | shuffled | chance |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind, k in record["kinds"].items():
        for space in ("r_space", "tsne_space"):
            s = k[space]
            lines.append(
                f"| {kind} ({k['points']}) | {space.replace('_', '-')} | {s['silhouette']:.3f} | "
                f"{s['silhouette_shuffled']:.3f} | {s['nn_same_scene']:.3f} | "
                f"{s['nn_same_scene_shuffled']:.3f} | {k['chance_nn_same_scene']:.3f} |"
            )
    return "\n".join(lines) + "\n"
