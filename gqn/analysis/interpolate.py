"""``gqn analyze interpolate``: renderings of (1 - t) r_a + t r_b (thesis §5.4, figure 5.28).

The thesis: "all images that are sampled from the interpolated representation are valid 5-block
Shepard-Metzler objects". For pairs of held-out scenes (a, b), r of each from K views, frames at
t = 0 ... 1 are rendered at one query pose (a's held-out view), all with the same latent noise
(one sample, one seed), so frames change only through r.

Validity, so the claim is measured and not only shown: the SSIM of a frame to the most similar
real view in a bank of every view of ``--bank`` held-out scenes (which includes a and b) — "does
it look like some real scene from some camera". Control: the pixel cross-fade
(1 - t) x_0 + t x_1 of the same two end frames, which shows two half-transparent objects, not a
valid scene. The claim holds at this scale when interior frames (0 < t < 1) are about as valid
as the end frames and more valid than the cross-fade.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from gqn.analysis.common import (
    Inputs,
    context_size,
    mean_and_se,
    render,
    represent,
    require_scenes,
)
from gqn.eval import image_metrics
from gqn.eval.evaluate import load_scenes
from gqn.viz.grids import comparison_grid

HELP = "strips of renderings of (1-t) r_a + t r_b (fig 5.28) with a per-frame validity score"
CAMERA = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=8, help="scene pairs (default 8)")
    parser.add_argument("--frames", type=int, default=8, help="frames per strip (default 8)")
    parser.add_argument("--context", type=int, default=None, help="context views K per scene")
    parser.add_argument("--bank", type=int, default=50, help="scenes whose views form the bank")
    parser.add_argument("--seed", type=int, default=0, help="view order and noise seed (0)")


def validity(frames: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """(m,) SSIM of each frame (m, c, s, s) to its most similar image of ``bank`` (B, c, s, s)."""
    return torch.stack(
        [image_metrics.ssim(f.expand_as(bank), bank).max() for f in frames.clamp(0, 1)]
    )


@torch.no_grad()
def run(inputs: Inputs, options: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Interpolation strips, their validity and the cross-fade control."""
    if options.frames < 3:
        raise ValueError(f"--frames must be >= 3 (two ends and a middle), got {options.frames}")
    n = require_scenes("interpolate", inputs.test, max(options.bank, 2 * options.pairs), 2)
    pairs = min(options.pairs, n // 2)
    k = context_size(inputs, options.context)
    images, viewpoints = load_scenes(inputs.test, n, options.seed)
    if k > images.shape[1] - 1:
        raise ValueError(f"--context must lie in 1..{images.shape[1] - 1}")
    r = represent(inputs.model, images[:, 1 : k + 1], viewpoints[:, 1 : k + 1])
    t = torch.linspace(0, 1, options.frames)
    strips = []
    for p in range(pairs):
        a, b = 2 * p, 2 * p + 1
        query = viewpoints[a, :1][None]  # a's held-out view, (1, 1, d)
        strips.append(
            torch.cat(
                [
                    render(
                        inputs.model,
                        (1 - s) * r[a : a + 1] + s * r[b : b + 1],
                        query,
                        1,
                        options.seed,
                    )[0, 0]
                    for s in t.tolist()
                ]
            )
        )
    frames = torch.stack(strips)  # (P, T, c, s, s)
    w = t[None, :, None, None, None]
    crossfade = (1 - w) * frames[:, :1] + w * frames[:, -1:]
    bank = images.flatten(0, 1)
    score = {
        "interpolation": validity(frames.flatten(0, 1), bank).view(pairs, -1),
        "crossfade": validity(crossfade.flatten(0, 1), bank).view(pairs, -1),
    }
    per_t = {name: s.mean(0).tolist() for name, s in score.items()}
    ends = float(score["interpolation"][:, [0, -1]].mean())
    interior = {name: float(s[:, 1:-1].mean()) for name, s in score.items()}
    rows = torch.stack([frames, crossfade], 1).flatten(0, 1)  # interpolation, crossfade per pair
    comparison_grid(list(rows.unbind(1)), scale=3).save(out / "interpolate.png")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, values in per_t.items():
        ax.plot(t.tolist(), values, marker="o", label=name)
    ax.set_xlabel("t")
    ax.set_ylabel("validity (SSIM to nearest real view)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "interpolate_validity.png", dpi=100)
    plt.close(fig)
    return {
        "pairs": pairs,
        "frames": options.frames,
        "context": k,
        "bank_images": len(bank),
        "t": t.tolist(),
        "validity_per_t": per_t,
        "validity_per_pair": {name: s.tolist() for name, s in score.items()},
        "validity_ends": ends,
        "validity_interior": interior,
        "interior_over_ends": interior["interpolation"] / ends,
        **dict(
            zip(
                ("gain_over_crossfade", "gain_over_crossfade_se"),
                mean_and_se((score["interpolation"] - score["crossfade"])[:, 1:-1].mean(1)),
                strict=True,
            )
        ),
    }


def markdown(record: dict[str, Any]) -> str:
    inter = record["validity_interior"]
    return "\n".join(
        [
            "# Interpolating representations",
            "",
            f"{record['pairs']} pairs of held-out scenes, r from K = {record['context']} views, "
            f"{record['frames']} frames at t = 0 ... 1 rendered at scene a's held-out pose, one "
            f"latent seed. Validity = SSIM to the nearest of {record['bank_images']} real views.",
            "",
            f"- end frames (t = 0, 1): validity {record['validity_ends']:.3f}",
            f"- interior frames, interpolated r: {inter['interpolation']:.3f} "
            f"({record['interior_over_ends']:.2f} x the ends)",
            f"- interior frames, pixel cross-fade (control): {inter['crossfade']:.3f}; "
            f"interpolated r minus cross-fade {record['gain_over_crossfade']:+.4f} +- "
            f"{record['gain_over_crossfade_se']:.4f} (mean +- standard error over the pairs)",
            "",
            "Rows per pair: interpolated r, then the pixel cross-fade of its end frames.",
            "",
            "![strips](interpolate.png)",
            "",
            "![validity](interpolate_validity.png)",
            "",
        ]
    )
