"""``gqn experiment narratives-consistency``: do the frames of ONE sample tell one story?

For the same context, each model samples every frame of a test video ``--samples`` times; each
sample's frames are read back (:mod:`gqn.eval.narratives`) and scored (seed 003 §4.1):

- Traveling Salesman (context: the first ``--context`` frames): the shape the salesman touches
  at each arrival frame (``visit_order``); score = share of distinct shapes among the arrivals
  (:func:`~gqn.eval.video_metrics.distinct_share`: 1.0 = a tour visiting each shape once);
- Color Reaction (context: frames 0 and 1): the reactor's colour in every frame from the change
  on (``reaction_colors``); score = share of the most common colour
  (:func:`~gqn.eval.video_metrics.modal_share`: 1.0 = one colour in every frame).

A sample "agrees" when its score is 1.0. CGQN draws one latent per sample, so its frames should
agree; GQN draws every frame on its own, so they should not. Controls: the true videos (the
readout's ceiling) and, as the random control, CGQN's samples with every frame taken from a
random sample of the same video (:func:`~gqn.eval.video_metrics.mix_samples`).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch

from gqn.data.scenes import Story
from gqn.eval.narratives import reaction_colors, visit_order
from gqn.eval.video_metrics import distinct_share, mix_samples, modal_share
from gqn.experiments import narratives
from gqn.experiments.report import arguments, write_report
from gqn.viz.plots import plt, save_figure

NAME = "narratives-consistency"
HELP = "consistency of one sample's frames (visit order, reaction colour): CGQN vs GQN"


def tour_score(video: torch.Tensor, story: Story) -> float:
    return distinct_share(visit_order(video, story))


def reaction_score(video: torch.Tensor, story: Story) -> float:
    return modal_share(reaction_colors(video, story)[int(story.truth["change_frame"]) :])


TASKS: dict[str, tuple[str, str, Callable[[torch.Tensor, Story], float]]] = {
    "traveling-salesman": ("ts-cgqn", "ts-gqn", tour_score),
    "color-reaction": ("cr-cgqn", "cr-gqn", reaction_score),
}
"""task -> (CGQN run, GQN run, score of one video (T, s, s, 3) given its story)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    narratives.add_run_arguments(parser, "runs/narratives/results")
    parser.add_argument("--videos", type=int, default=16, help="test videos per task")
    parser.add_argument("--samples", type=int, default=10, help="samples per video")
    parser.add_argument("--context", type=int, default=6,
                        help="Traveling Salesman: first frames given as context")  # fmt: skip


def summary(scores: list[float]) -> dict:
    """Fraction of samples that agree (score 1.0), mean and standard deviation of the scores."""
    return {
        "agree": sum(s == 1.0 for s in scores) / len(scores),
        "mean": statistics.fmean(scores),
        "std": statistics.pstdev(scores),
        "count": len(scores),
    }


def scores(samples: torch.Tensor, videos: narratives.Videos, score) -> list[float]:
    """``score`` of every sample (b, S, T, 3, s, s) of every video."""
    return [
        score(narratives.as_video(sample), story)
        for per_video, story in zip(samples, videos.stories, strict=True)
        for sample in per_video
    ]


def run(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    results = {}
    for task, (cgqn, gqn, score) in TASKS.items():
        videos = narratives.test_videos(args, cgqn, args.videos)
        frames = videos.images.shape[1]
        context = range(args.context) if task == "traveling-salesman" else range(2)
        if not 1 <= len(context) < frames:
            raise ValueError(f"--context must lie in 1..{frames - 1}, got {args.context}")
        sampled = {
            name: narratives.roll(narratives.trained(args, run), videos, context,
                                  range(frames), args.samples, args.seed)
            for name, run in (("CGQN", cgqn), ("GQN", gqn))
        }  # fmt: skip
        generator = torch.Generator().manual_seed(args.seed)
        sampled["CGQN, frames mixed across samples (random control)"] = mix_samples(
            sampled["CGQN"], generator
        )
        sampled["true videos"] = videos.images[:, None]
        results[task] = {
            "context": list(context),
            **{name: summary(scores(s, videos, score)) for name, s in sampled.items()},
        }
    record = {"arguments": arguments(args), "tasks": results}
    plot(results, args.out / f"{NAME}.png")
    write_report(args.out, NAME, record, markdown(record))
    return 0


def plot(results: dict, path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.4), squeeze=False)
    for ax, (task, rows) in zip(axes[0], results.items(), strict=True):
        names = [n for n in rows if n != "context"]
        ax.bar(range(len(names)), [rows[n]["agree"] for n in names],
               color=["tab:blue", "tab:orange", "tab:gray", "tab:green"][: len(names)])  # fmt: skip
        ax.set_xticks(range(len(names)), [n.split(",")[0] + ("\nmixed" if "," in n else "")
                                          for n in names], fontsize=8)  # fmt: skip
        ax.set_ylim(0, 1)
        ax.set_ylabel("samples whose frames agree")
        ax.set_title(task)
        ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)


def markdown(record: dict) -> str:
    a = record["arguments"]
    lines = [
        f"# {NAME}",
        "",
        f"{a['videos']} test videos per task (seed {a['seed']}), {a['samples']} samples each, "
        "every frame queried. Score of one sample: Traveling Salesman, share of distinct shapes "
        "at the arrival frames (1 = each visited once); Color Reaction, share of the most common "
        "reactor colour after the change (1 = one colour). 'agree': fraction of samples with "
        "score 1.",
        "",
        "| task | context frames | source | agree | mean score | std | samples |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for task, rows in record["tasks"].items():
        for name, r in rows.items():
            if name != "context":
                lines.append(
                    f"| {task} | {rows['context']} | {name} | {r['agree']:.3f} | "
                    f"{r['mean']:.3f} | {r['std']:.3f} | {r['count']} |"
                )
    lines += ["", f"![consistency]({NAME}.png)", ""]
    return "\n".join(lines)
