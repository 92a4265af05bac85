"""``gqn experiment narratives-min-mse``: seed 003's figure 5 on Traveling Salesman.

Given the first ``--context`` frames of each test video, every model samples the remaining
frames ``--samples`` times (30 in the paper); a video's score is the MSE of its closest sample
(:func:`gqn.eval.video_metrics.min_mse`), averaged over the videos. CGQN against GQN (trained
on the same videos, timestamps as viewpoints) and CGQN without its latent, the deterministic
baseline in the role CDNA plays in the paper; scored after every training chunk and, at the
end, against the number of samples. A model that cannot sample the true continuation among its
samples (mode collapse, or no stochasticity at all) gains nothing from more samples.
"""

from __future__ import annotations

import argparse
import math

import torch

from gqn.eval.video_metrics import min_mse, sample_mse
from gqn.experiments import narratives
from gqn.experiments.report import arguments, write_report
from gqn.experiments.runs import Chunk
from gqn.viz.plots import plt, save_figure

NAME = "narratives-min-mse"
HELP = "figure 5: min over samples of the per-video MSE, CGQN vs GQN vs deterministic"
MODELS = {"ts-cgqn": "CGQN", "ts-gqn": "GQN", "ts-det": "deterministic (CGQN, no latent)"}
SAMPLE_COUNTS = (1, 2, 5, 10, 20, 30)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    narratives.add_run_arguments(parser, "runs/narratives/results")
    parser.add_argument("--videos", type=int, default=24, help="test videos")
    parser.add_argument("--samples", type=int, default=30, help="samples per video")
    parser.add_argument("--context", type=int, default=6, help="first frames given as context")


def mean_sem(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of (b,) values (sem 0 for one value)."""
    n = values.numel()
    sem = float(values.std()) / math.sqrt(n) if n > 1 else 0.0
    return float(values.mean()), sem


def score(chunk: Chunk, samples: torch.Tensor, truth: torch.Tensor) -> dict:
    """One point of a curve: min-MSE over all samples (mean, sem over the videos) and the mean
    MSE of a single sample, at the chunk's step."""
    best, sem = mean_sem(min_mse(samples, truth))
    return {
        "step": chunk.step,
        "train_seconds": round(chunk.train_seconds, 1),
        "cpu_seconds": round(chunk.cpu_seconds, 1),
        "min_mse": best,
        "min_mse_sem": sem,
        "sample_mse": float(sample_mse(samples, truth).mean()),
    }


def run(args: argparse.Namespace) -> int:
    videos = narratives.test_videos(args, "ts-cgqn", args.videos)
    frames = videos.images.shape[1]
    if not 1 <= args.context < frames or args.samples < 1:
        raise ValueError(
            f"--context must lie in 1..{frames - 1} and --samples be >= 1, "
            f"got {args.context} and {args.samples}"
        )
    context, targets = range(args.context), range(args.context, frames)
    truth = videos.images[:, targets]
    curves, by_samples = {}, {}
    for run_name in MODELS:
        curves[run_name] = []
        for chunk in narratives.train(args, run_name):
            model = narratives.load(chunk.checkpoint)
            samples = narratives.roll(model, videos, context, targets, args.samples, args.seed)
            curves[run_name].append(score(chunk, samples, truth))
        counts = [k for k in SAMPLE_COUNTS if k <= args.samples]
        by_samples[run_name] = {k: mean_sem(min_mse(samples[:, :k], truth))[0] for k in counts}
    hold = videos.images[:, args.context - 1, None].expand_as(truth)
    record = {
        "arguments": arguments(args),
        "frames": frames,
        "targets": len(targets),
        "models": MODELS,
        "curves": curves,
        "final": {name: points[-1] for name, points in curves.items()},
        "min_mse_by_samples": by_samples,
        "hold_last_context_frame_mse": mean_sem(sample_mse(hold[:, None], truth)[:, 0])[0],
    }
    plot(record, args.out / f"{NAME}.png")
    write_report(args.out, NAME, record, markdown(record))
    return 0


def plot(record: dict, path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, label in MODELS.items():
        points = record["curves"][name]
        left.errorbar(
            [p["step"] for p in points],
            [p["min_mse"] for p in points],
            yerr=[p["min_mse_sem"] for p in points],
            marker="o",
            capsize=3,
            label=label,
        )
        counts = record["min_mse_by_samples"][name]
        right.plot(list(counts), list(counts.values()), marker="o", label=label)
    hold = record["hold_last_context_frame_mse"]
    for ax in (left, right):
        ax.axhline(hold, color="gray", linestyle=":", label="hold last context frame")
        ax.set_ylabel("min-MSE per video")
        ax.grid(alpha=0.3)
    left.set_xlabel("training step")
    left.set_title(f"min over {record['arguments']['samples']} samples")
    right.set_xlabel("samples per video")
    right.set_xscale("log")
    right.set_title("at the last step")
    left.legend(fontsize=7)
    save_figure(fig, path)


def markdown(record: dict) -> str:
    a = record["arguments"]
    lines = [
        f"# {NAME}",
        "",
        f"Traveling Salesman, {a['videos']} test videos (seed {a['seed']}), context = the first "
        f"{a['context']} of {record['frames']} frames, targets = the other {record['targets']}; "
        f"per video the MSE of the closest of {a['samples']} samples (seed 003 figure 5), "
        "mean ± standard error over the videos.",
        "",
        f"| model | step | min-MSE over {a['samples']} | mean MSE of one sample | "
        "train wall s | train CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in MODELS.items():
        for p in record["curves"][name]:
            lines.append(
                f"| {label} | {p['step']} | {p['min_mse']:.5f} ± {p['min_mse_sem']:.5f} | "
                f"{p['sample_mse']:.5f} | {p['train_seconds']:.0f} | {p['cpu_seconds']:.0f} |"
            )
    counts = list(next(iter(record["min_mse_by_samples"].values())))
    lines += [
        "",
        f"Hold the last context frame (no model): MSE {record['hold_last_context_frame_mse']:.5f}.",
        "",
        "Min-MSE against the number of samples, last step:",
        "",
        "| model | " + " | ".join(f"S={k}" for k in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for name, label in MODELS.items():
        row = record["min_mse_by_samples"][name]
        lines.append(f"| {label} | " + " | ".join(f"{row[k]:.5f}" for k in counts) + " |")
    lines += ["", f"![min-MSE]({NAME}.png)", ""]
    return "\n".join(lines)
