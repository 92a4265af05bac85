"""``gqn experiment dice-kl-consistency``: KL with 1 vs 3 targets of the unseen face (seed 003
§4.2, "CGQN consistency analysis").

The context is K views that miss one side of the die (and see ``--context-sides`` sides:
3 = the paper's "frames that show three sides"); the targets are views of that side. For each
held-out scene:

    KL_1 = KL[q(z | ctx, x_1) || p(z | ctx)]          one target of the unseen face
    KL_3 = KL[q(z | ctx, x_1, x_2, x_3) || p(z | ctx)]  three targets of it

The two extra targets show the same digit, so a consistent model has KL_3 ~ KL_1 (paper: 4.25
vs 4.19, sd 0.092 over 12 CGQN models); the GQN, a factored model with a latent per target,
pays the KL of each target: KL_3 is the sum of three per-target KLs, ~3 KL_1. Each run is
scored with the same posterior noise seed for both; means over scenes, then mean and sample
sd over the ``--seeds`` training seeds (seed 0 is dice-elbo's run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gqn.experiments import dice_runs
from gqn.experiments.report import arguments, write_report
from gqn.models.loading import load_model

NAME = "dice-kl-consistency"
HELP = "MNIST dice: KL with 1 vs 3 targets of the unseen face, CGQN vs GQN, over seeds"
PAPER = {"cgqn": {"kl_1": 4.25, "kl_3": 4.19, "sd_kl_1": 0.092, "models": 12}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dice_runs.add_arguments(parser, "runs/dice/report")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds 0..N-1 (default 2)")
    parser.add_argument(
        "--setting", default="piecewise", choices=list(dice_runs.SETTINGS),
        help="pixel-sigma setting of the runs (default piecewise)",
    )  # fmt: skip
    parser.add_argument(
        "--context-sides", type=int, default=3, help="sides the context sees (default 3)"
    )


def kl_pair(net, batch, sigma: float, seed: int) -> tuple[float, float]:
    """Mean KL (nats per scene) given the first target, and given all three."""
    kl_1 = dice_runs.elbo_terms(net, dice_runs.first_targets(batch, 1), sigma, seed).kl
    kl_3 = dice_runs.elbo_terms(net, batch, sigma, seed).kl
    return kl_1.mean().item(), kl_3.mean().item()


def spread(values: list[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "sd": sd}


def _fmt(x: dict) -> str:
    """``mean (sd)``, or the mean alone for one seed."""
    return f"{x['mean']:.3f}" + (f" ({x['sd']:.3f})" if x["sd"] is not None else "")


def markdown(runs: list[dict], summary: dict, scenes: int, sides: int) -> str:
    lines = [
        f"# {NAME}: KL with 1 vs 3 targets of the unseen face",
        "",
        f"{scenes} held-out scenes, context seeing >= {sides} sides and never the queried one; "
        "KL in nats per scene (GQN: summed over its per-target latents).",
        "",
        "| model | seed | KL_1 | KL_3 | KL_3 / KL_1 |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['seed']} | {r['kl_1']:.3f} | {r['kl_3']:.3f} | {r['ratio']:.2f} |"
        for r in runs
    ]
    lines += ["", "| model | KL_1 mean (sd) | KL_3 mean (sd) | KL_3 / KL_1 mean (sd) |"]
    lines.append("|---|---:|---:|---:|")
    for model, s in summary.items():
        lines.append(f"| {model} | {_fmt(s['kl_1'])} | {_fmt(s['kl_3'])} | {_fmt(s['ratio'])} |")
    lines += [
        "",
        "Paper (12 CGQN models): KL_1 4.25, KL_3 4.19, sd of KL_1 0.092.",
        "",
        f"![KL_1 vs KL_3]({NAME}.png)",
        "",
    ]
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for x, model in enumerate(dice_runs.MODELS):
        pts = [r for r in runs if r["model"] == model]
        for dx, key, colour in ((-0.15, "kl_1", "tab:grey"), (0.15, "kl_3", "tab:orange")):
            values = [r[key] for r in pts]
            ax.bar(x + dx, np.mean(values), 0.3, color=colour, label=key if x == 0 else None)
            ax.plot([x + dx] * len(values), values, "k.")
    ax.set_xticks(range(len(dice_runs.MODELS)), [m.upper() for m in dice_runs.MODELS])
    ax.set_ylabel("KL (nats/scene)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    data = dice_runs.ensure_data(args)
    batch, indices, _ = dice_runs.test_batch(
        data, args.test_scenes, args.contexts, args.eval_seed, args.context_sides
    )
    sigma = dice_runs.SETTINGS[args.setting].eval_sigma
    runs = []
    for model in dice_runs.MODELS:
        for seed in range(args.seeds):
            net, _ = load_model(dice_runs.final_checkpoint(args, data, args.setting, model, seed))
            kl_1, kl_3 = kl_pair(net, batch, sigma, args.eval_seed)
            runs.append({"model": model, "seed": seed, "kl_1": kl_1, "kl_3": kl_3,
                         "ratio": kl_3 / kl_1})  # fmt: skip
    summary = {
        model: {
            key: spread([r[key] for r in runs if r["model"] == model])
            for key in ("kl_1", "kl_3", "ratio")
        }
        for model in dice_runs.MODELS
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    plot(runs, Path(args.out) / f"{NAME}.png")
    record = {"arguments": arguments(args), "test_scenes": indices, "runs": runs,
              "summary": summary, "paper": PAPER}  # fmt: skip
    write_report(args.out, NAME, record, markdown(runs, summary, len(indices), args.context_sides))
    return 0
