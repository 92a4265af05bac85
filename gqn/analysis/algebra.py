"""``gqn analyze algebra``: scene algebra r(A) - r(B) + r(C) (seeds 000/001/002).

The paper: "by adding and subtracting representations of related scenes, object and scene
properties can be controlled". Controlled triples come from the store's procedural family
(:meth:`gqn.data.scenes.RayCastFamily.mixed_scene`): for held-out scenes i and j, with
"base" = the family's object or room and "property" = :attr:`swapped_property` (Shepard-Metzler:
the cube colours; rooms: the objects),

    A = (base i, property i)   B = (base i, property j)   C = (base j, property j)
    D = (base j, property i)   so   r(A) - r(B) + r(C) "=" r(D).

A and B share cameras (base i's), as do C and D (base j's). r of each comes from the first K
views; the renderings at D's remaining views (prior mean of S samples, one noise seed for all)
are scored against D's true views. Controls: r(C) alone (D's base with the wrong property) and
r(A) alone (the right property on the wrong base); r(D) itself is the reference a perfect
algebra would reach. Also reported: the distance of each r to r(D), relative to ||r(C) - r(D)||.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from gqn.analysis.common import (
    Inputs,
    context_size,
    mean_and_se,
    render,
    represent,
    require_scenes,
)
from gqn.data.collate import frames_to_images
from gqn.eval import image_metrics
from gqn.viewpoint import pose_to_viewpoint
from gqn.viz.grids import comparison_grid

HELP = "r(A) - r(B) + r(C) for triples differing in one property, scored against D, controls"
CAMERA = True
METHODS = ("algebra", "C_alone", "A_alone", "D_itself")
FIGURE_ROWS = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--triples", type=int, default=16, help="triples (2 scenes each; 16)")
    parser.add_argument("--context", type=int, default=None, help="context views K per scene")
    parser.add_argument("--samples", type=int, default=8, help="prior samples per query (8)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")


def scenes(inputs: Inputs, count: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"A", "B", "C", "D"}: images (T, V, c, s, s) and viewpoints (T, V, d) of ``count``
    triples made from consecutive pairs of held-out scenes."""
    family, seed = inputs.family()
    if getattr(family, "swapped_property", None) is None:
        raise ValueError(
            f"gqn analyze algebra: the {family.name!r} family cannot make triples of scenes "
            "that differ in one property; use a shepard-metzler or rooms store"
        )
    pick = inputs.test.indices[: 2 * count]
    i, j = pick[0::2].tolist(), pick[1::2].tolist()
    rendered = {
        "A": family.render_scenes(seed, i),
        "B": family.render_mixed(seed, list(zip(i, j, strict=True))),
        "C": family.render_scenes(seed, j),
        "D": family.render_mixed(seed, list(zip(j, i, strict=True))),
    }
    return {
        name: (frames_to_images(torch.from_numpy(f)), pose_to_viewpoint(torch.from_numpy(p)))
        for name, (f, p) in rendered.items()
    }


@torch.no_grad()
def run(inputs: Inputs, options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Render the triples, r(A) - r(B) + r(C) and the controls; score them against D."""
    count = require_scenes("algebra", inputs.test, 2 * options.triples, 2) // 2
    views = inputs.test.views
    k = context_size(inputs, options.context)
    if k > views - 1:
        raise ValueError(f"--context must lie in 1..{views - 1} (a query view must remain)")
    family, _ = inputs.family()
    x = scenes(inputs, count)
    r = {name: represent(inputs.model, im[:, :k], v[:, :k]) for name, (im, v) in x.items()}
    rs = {
        "algebra": r["A"] - r["B"] + r["C"],
        "C_alone": r["C"],
        "A_alone": r["A"],
        "D_itself": r["D"],
    }
    truth, query = x["D"][0][:, k:], x["D"][1][:, k:]
    flat_truth = truth.flatten(0, 1)
    scores, renders, per_triple = {}, {}, {}
    for name, rep in rs.items():
        renders[name] = render(inputs.model, rep, query, options.samples, options.seed).mean(1)
        metrics = image_metrics.image_metrics(renders[name].flatten(0, 1), flat_truth)
        scores[name] = {m: float(v.mean()) for m, v in metrics.items() if v is not None}
        per_triple[name] = {m: metrics[m].view(count, -1).mean(1) for m in ("psnr", "ssim")}
    scale = float((r["C"] - r["D"]).flatten(1).norm(dim=1).mean())
    distance = {
        name: float((rep - r["D"]).flatten(1).norm(dim=1).mean()) / scale
        for name, rep in rs.items()
    }
    rows = min(FIGURE_ROWS, count)
    columns = [x[n][0][:rows, k] for n in "ABCD"] + [renders[m][:rows, 0] for m in METHODS]
    comparison_grid(columns, scale=3).save(out / "algebra.png")
    return {
        "family": family.name,
        "swapped_property": family.swapped_property,
        "triples": count,
        "context": k,
        "queries_per_triple": views - k,
        "num_samples": options.samples,
        "scores": scores,
        "r_distance_to_D": distance,
        **{
            f"{m}_gain_over_C{suffix}": value
            for m in ("psnr", "ssim")
            for suffix, value in zip(
                ("", "_se"),
                mean_and_se(per_triple["algebra"][m] - per_triple["C_alone"][m]),
                strict=True,
            )
        },
    }


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# Scene algebra r(A) - r(B) + r(C)",
        "",
        f"{record['triples']} triples of `{record['family']}` scenes differing in "
        f"**{record['swapped_property']}**; r from K = {record['context']} views; scored on "
        f"{record['queries_per_triple']} views of D each (prior mean of "
        f"{record['num_samples']} samples).",
        "",
        "| r | PSNR (dB) | SSIM | MSE | distance to r(D) / distance of r(C) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in METHODS:
        s = record["scores"][name]
        lines.append(
            f"| {name} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['mse']:.4f} | "
            f"{record['r_distance_to_D'][name]:.3f} |"
        )
    lines += [
        "",
        f"Gain of the algebra over r(C) alone: PSNR {record['psnr_gain_over_C']:+.3f} +- "
        f"{record['psnr_gain_over_C_se']:.3f} dB, SSIM {record['ssim_gain_over_C']:+.4f} +- "
        f"{record['ssim_gain_over_C_se']:.4f} (mean +- standard error over the triples).",
        "",
        "Columns: A | B | C | D (truth, at D's first query view) | renderings from "
        + " | ".join(f"{m}" for m in METHODS),
        "",
        "![algebra](algebra.png)",
        "",
    ]
    return "\n".join(lines)
