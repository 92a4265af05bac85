"""``gqn experiment narratives-samples``: sample strips like seed 003's figures 3 and 4.

- Figure 3: Traveling Salesman given its first ``--context`` frames; rows: the true video, two
  CGQN samples, two GQN samples, every frame of the video queried (the context frames too).
- Figure 4: Color Reaction given two seen frames, rolled forwards (frames 1-2 seen), backwards
  (the last two) and both ways (the two around the reaction, c - 1 and c); two CGQN samples each.

Each sample row is read back with :mod:`gqn.eval.narratives` (the salesman's visits, the
reactor's colour after the reaction), so the Markdown states what the strips show.
"""

from __future__ import annotations

import argparse

import torch

from gqn.eval.narratives import reaction_colors, visit_order
from gqn.experiments import narratives
from gqn.experiments.report import arguments, write_report
from gqn.viz.grids import comparison_grid

NAME = "narratives-samples"
HELP = "figures 3-4: sample strips of CGQN and GQN (Traveling Salesman, Color Reaction)"
PER_MODEL = 2  # samples shown per model or direction, as in the figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    narratives.add_run_arguments(parser, "runs/narratives/results")
    parser.add_argument("--videos", type=int, default=2, help="Traveling Salesman videos shown")
    parser.add_argument("--context", type=int, default=6, help="first frames given as context")
    parser.add_argument("--scale-px", type=int, default=3, help="pixel enlargement of the PNGs")


def rows_png(rows: torch.Tensor, path, scale: int) -> str:
    """Save rows (r, T, 3, s, s) as one grid, a row per strip; returns the file name."""
    comparison_grid(list(rows.transpose(0, 1)), scale=scale).save(path)
    return path.name


def directions(frames: int) -> dict[str, list[int]]:
    """Figure 4's two seen frames per direction for a video of ``frames`` frames."""
    c = frames // 2
    return {"forwards": [0, 1], "backwards": [frames - 2, frames - 1], "both ways": [c - 1, c]}


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    ts = narratives.test_videos(args, "ts-cgqn", args.videos)
    frames = ts.images.shape[1]
    if not 1 <= args.context < frames:
        raise ValueError(f"--context must lie in 1..{frames - 1}, got {args.context}")
    every = range(frames)
    figure3 = []
    strips = {
        name: narratives.roll(
            narratives.trained(args, run), ts, range(args.context), every, PER_MODEL, args.seed
        )
        for name, run in (("CGQN", "ts-cgqn"), ("GQN", "ts-gqn"))
    }  # (b, 2, T, 3, s, s) each
    for i, story in enumerate(ts.stories):
        rows = [("truth", ts.images[i])] + [
            (f"{name} sample {j + 1}", samples[i, j])
            for name, samples in strips.items()
            for j in range(PER_MODEL)
        ]
        png = rows_png(torch.stack([r for _, r in rows]), args.out / f"{NAME}-ts-{i}.png",
                       args.scale_px)  # fmt: skip
        figure3.append({
            "png": png,
            "true_visit_order": story.truth["visit_order"],
            "rows": [{"row": label, "visits": visit_order(narratives.as_video(r), story)}
                     for label, r in rows],
        })  # fmt: skip
    cr = narratives.test_videos(args, "cr-cgqn", 1)
    story, model = cr.stories[0], narratives.trained(args, "cr-cgqn")
    change = int(story.truth["change_frame"])
    rows = [("truth", cr.images[0])]
    for direction, seen in directions(cr.images.shape[1]).items():
        samples = narratives.roll(model, cr, seen, range(cr.images.shape[1]), PER_MODEL,
                                  args.seed)[0]  # fmt: skip
        rows += [(f"{direction} (seen {seen}) sample {j + 1}", samples[j]) for j in range(2)]
    figure4 = {
        "png": rows_png(torch.stack([r for _, r in rows]), args.out / f"{NAME}-cr.png",
                        args.scale_px),
        "change_frame": change,
        "rows": [{"row": label,
                  "colors_after_change": reaction_colors(narratives.as_video(r), story)[change:]}
                 for label, r in rows],
    }  # fmt: skip
    record = {"arguments": arguments(args), "figure3": figure3, "figure4": figure4}
    write_report(args.out, NAME, record, markdown(record))
    return 0


def markdown(record: dict) -> str:
    a = record["arguments"]
    lines = [
        f"# {NAME}",
        "",
        f"Figure 3: Traveling Salesman, context = the first {a['context']} frames; every frame "
        "queried. Rows: truth, CGQN samples 1-2, GQN samples 1-2; 'visits' is the shape at "
        "each arrival frame read from the row (gqn.eval.narratives.visit_order; -1: salesman "
        "not found). A consistent tour visits every shape once.",
        "",
    ]
    for video in record["figure3"]:
        lines += [f"![traveling salesman]({video['png']})", "", "| row | visits |", "|---|---|"]
        lines += [f"| {r['row']} | {r['visits']} |" for r in video["rows"]]
        lines.append("")
    f4 = record["figure4"]
    lines += [
        "Figure 4: Color Reaction, CGQN given two seen frames (indices from 0), every frame "
        f"queried; the reactor's colour (palette index) in the frames from {f4['change_frame']} "
        "on, read from each row (gqn.eval.narratives.reaction_colors).",
        "",
        f"![color reaction]({f4['png']})",
        "",
        "| row | colour after the reaction, per frame |",
        "|---|---|",
    ]
    lines += [f"| {r['row']} | {r['colors_after_change']} |" for r in f4["rows"]]
    return "\n".join([*lines, ""])
