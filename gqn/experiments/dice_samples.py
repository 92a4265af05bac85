"""``gqn experiment dice-samples``: seed 003 figure 7. A held-out scene's context views (which
miss one side of the die), then several queries of that unseen side: the ground truth, CGQN's
reconstruction (posterior given the 3 targets), S CGQN samples (one scene latent each, all
queries rendered from it: ``SceneModel.generate`` with n targets) and S GQN samples (each
query drawn independently).

Figure rows (first column blank): context views; ground truth; CGQN reconstruction; CGQN
samples 1..S; GQN samples 1..S. A consistent model shows one digit per row; the GQN may change it
from query to query.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gqn.experiments import dice_runs
from gqn.experiments.report import arguments, write_report
from gqn.models.loading import load_model
from gqn.viz.grids import sample_grid

NAME = "dice-samples"
HELP = "MNIST dice: samples of the unseen face, GQN (independent) vs CGQN (consistent), figure 7"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dice_runs.add_arguments(parser, "runs/dice/report")
    parser.add_argument(
        "--setting", default="piecewise", choices=list(dice_runs.SETTINGS),
        help="pixel-sigma setting of the runs (default piecewise)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--samples", type=int, default=4, help="samples per model (default 4)")
    parser.add_argument("--scene", type=int, default=0, help="which qualifying test scene")
    parser.add_argument(
        "--context-sides", type=int, default=3, help="sides the context sees (default 3)"
    )
    parser.add_argument("--scale", type=int, default=3, help="pixel enlargement (default 3)")


@torch.no_grad()
def rows_of(args: argparse.Namespace, data: Path, batch) -> dict[str, torch.Tensor]:
    """The figure's rows: ``truth`` (n, c, s, s), ``cgqn_reconstruction`` (n, ...),
    ``cgqn`` and ``gqn`` samples (S, n, c, s, s) of scene 0 of ``batch``."""
    rows = {"truth": batch.target_images[0]}
    for model in dice_runs.MODELS:
        net, _ = load_model(dice_runs.final_checkpoint(args, data, args.setting, model, args.seed))
        r = net.represent(batch.context_images, batch.context_viewpoints, batch.context_mask)
        generator = torch.Generator().manual_seed(args.eval_seed)
        samples = net.generate(r, batch.target_viewpoints, args.samples, generator)  # (1,S,n,...)
        if net.consistent:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.eval_seed)
                rows[f"{model}_reconstruction"] = net.reconstruct(batch)[0]
        rows[model] = samples[0]
    return rows


def run(args: argparse.Namespace) -> int:
    if args.samples < 1 or args.scene < 0:
        raise ValueError(f"need --samples >= 1 and --scene >= 0, got {args.samples}, {args.scene}")
    data = dice_runs.ensure_data(args)
    batch, indices, splits = dice_runs.test_batch(
        data, args.scene + 1, args.contexts, args.eval_seed, args.context_sides
    )
    if len(indices) <= args.scene:
        raise ValueError(f"--scene {args.scene}: only {len(indices)} test scenes qualify")
    batch = dice_runs.one_scene(batch, args.scene)
    rows = rows_of(args, data, batch)
    grid = torch.cat([rows["truth"][None], rows["cgqn_reconstruction"][None], rows["cgqn"],
                      rows["gqn"]])  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    image = sample_grid(batch.context_images[0], grid, scale=args.scale)
    image.save(Path(args.out) / f"{NAME}.png")
    split = splits[args.scene]
    record = {
        "arguments": arguments(args),
        "scene": indices[args.scene],
        "context_views": split.context.tolist(),
        "target_views": split.target.tolist(),
        "unseen_face": split.face,
        "rows": ["context", "truth", "cgqn reconstruction"]
        + [f"cgqn sample {i + 1}" for i in range(args.samples)]
        + [f"gqn sample {i + 1}" for i in range(args.samples)],
        # per-pixel sd over the S samples, averaged: how much a model's samples differ
        "sample_sd": {m: rows[m].std(0).mean().item() for m in dice_runs.MODELS},
    }
    md = "\n".join(
        [
            f"# {NAME}: the unseen face, sampled (figure 7)",
            "",
            f"Test scene {indices[args.scene]}: context views {split.context.tolist()} never "
            f"show side {split.face}; targets {split.target.tolist()} all do.",
            "",
            "Rows (first cell blank): context; ground truth; CGQN reconstruction; "
            f"{args.samples} CGQN samples (one latent renders the row); {args.samples} GQN "
            "samples (each query independent).",
            "",
            f"![samples]({NAME}.png)",
            "",
        ]
    )
    write_report(args.out, NAME, record, md)
    return 0
