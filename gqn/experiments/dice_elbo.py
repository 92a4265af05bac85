"""``gqn experiment dice-elbo``: test negative ELBO over 3 targets of the unseen face, CGQN vs
GQN, against training steps (seed 003 figure 6; appendix C's other pixel-variance settings).

Each held-out scene gets K context views that miss one side of the die and 3 targets that all
show it (:func:`gqn.experiments.dice_runs.test_batch`). Per scene, in nats:

    CGQN: -ELBO = sum_t -log N(x_t | g(r, z, v_t), sigma^2) + KL[q(z | r, e_T) || p(z | r)]
          with ONE z ~ q(z | r, e_T) shared by the 3 targets t;
    GQN:  -ELBO = sum_t (-log N(x_t | mu_t, sigma^2) + KL[q(z_t | x_t, v_t, r) || p(z_t | v_t, r)])
          with 3 independent latents z_t, one per target: the sum of per-target terms.

Both at the setting's final pixel sigma (the same for every step and model), posterior noise
from ``--eval-seed``; the mean over the test scenes is plotted against training steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gqn.experiments import dice_runs
from gqn.experiments.report import arguments, write_report
from gqn.models.loading import load_model

NAME = "dice-elbo"
HELP = "MNIST dice: test negative ELBO over 3 targets of the unseen face vs steps (figure 6)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dice_runs.add_arguments(parser, "runs/dice/report")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=list(dice_runs.SETTINGS),
        choices=list(dice_runs.SETTINGS),
        help="pixel-sigma settings (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")


def curve(args: argparse.Namespace, data, batch, setting: str, model: str) -> list[dict]:
    """One row per chunk of run ``(setting, model, --seed)``: step, nats per scene (3 targets)."""
    sigma = dice_runs.SETTINGS[setting].eval_sigma
    rows = []
    for chunk in dice_runs.train(args, data, setting, model, args.seed):
        net, _ = load_model(chunk.checkpoint)
        terms = dice_runs.elbo_terms(net, batch, sigma, args.eval_seed)
        nll, kl = terms.nll.mean().item(), terms.kl.mean().item()
        rows.append(
            {
                "setting": setting,
                "model": model,
                "step": chunk.step,
                "neg_elbo_nats": nll + kl,
                "nll_nats": nll,
                "kl_nats": kl,
                "eval_sigma": sigma,
                "train_seconds": round(chunk.train_seconds, 1),
                "cpu_seconds": round(chunk.cpu_seconds, 1),
            }
        )
    return rows


def plot(rows: list[dict], settings: list[str], path) -> None:
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3.4), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        for model, colour in (("cgqn", "tab:blue"), ("gqn", "tab:red")):
            pts = [r for r in rows if r["setting"] == setting and r["model"] == model]
            ax.plot([r["step"] for r in pts], [r["neg_elbo_nats"] for r in pts], "o-",
                    color=colour, label=model.upper())  # fmt: skip
        sigma = dice_runs.SETTINGS[setting].eval_sigma
        ax.set(title=f"{setting} (test sigma {sigma})", xlabel="training step",
               ylabel="test -ELBO, 3 targets (nats/scene)")  # fmt: skip
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(rows: list[dict], settings: list[str], scenes: int) -> str:
    lines = [
        f"# {NAME}: test negative ELBO over 3 targets of the unseen face",
        "",
        f"{scenes} held-out scenes; nats per scene summed over the 3 targets (GQN: 3 "
        "independent latents, the sum of per-target NLL + KL; CGQN: one shared latent, one KL).",
        "",
        "| setting | model | step | -ELBO | NLL | KL | train s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['model']} | {r['step']} | {r['neg_elbo_nats']:.1f} | "
            f"{r['nll_nats']:.1f} | {r['kl_nats']:.2f} | {r['train_seconds']:.0f} |"
        )
    lines += ["", f"![test -ELBO vs steps]({NAME}.png)", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data = dice_runs.ensure_data(args)
    batch, indices, _ = dice_runs.test_batch(data, args.test_scenes, args.contexts, args.eval_seed)
    rows = [
        row
        for setting in args.settings
        for model in dice_runs.MODELS
        for row in curve(args, data, batch, setting, model)
    ]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    plot(rows, args.settings, Path(args.out) / f"{NAME}.png")
    record = {"arguments": arguments(args), "test_scenes": indices, "rows": rows}
    write_report(args.out, NAME, record, markdown(rows, args.settings, len(indices)))
    return 0
