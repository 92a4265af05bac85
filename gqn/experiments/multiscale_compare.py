"""``gqn experiment multiscale-compare``: the thesis' models 0-6 with equal budgets on the same
data (issue 17; thesis §5.2).

For each ``MODELS_DIR/model<i>.yaml``: train in chunks of ``--eval-every`` steps (same seed, data
and batches for all; :func:`gqn.experiments.runs.train_in_chunks`, so a rerun resumes every
run and reuses each chunk's stored scores); after each chunk score the checkpoint with ``gqn
eval``'s protocol on
held-out scenes at K = ``--k`` (prior mean and reconstruction PSNR/SSIM) and record the held-out
NLL and KL per layer (KL groups; per-layer NLL of a multi-scale model, ``layer_nll``). Reports
seconds/step (training chunks only), parameters, FLOPs of one training step (forward + backward,
``torch.utils.flop_counter``), the first step and training seconds at which the prior mean
reaches ``--target-psnr`` dB, the per-layer figures of the last checkpoint; writes
``OUT/multiscale-compare.json`` and ``.md`` (rewritten after every model, so a partial run reports
what it has) and PNG plots of the metrics against steps.

    gqn experiment multiscale-compare --data data/demo-sm32 --out runs/multiscale-compare \
        --steps 1500 --eval-every 500

Seconds/step are wall times: meaningful on a quiet machine only; the FLOPs are not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch.utils.flop_counter import FlopCounterMode

from gqn.batch import QueryBatch
from gqn.data.dataset import open_split
from gqn.eval.evaluate import load_scenes
from gqn.eval.layers import write_layer_figures
from gqn.experiments.report import arguments, write_report
from gqn.experiments.runs import chunk_scores, train_in_chunks
from gqn.models.loading import load_model
from gqn.models.registry import build_model
from gqn.run_config import RunConfig

HELP = "the thesis' multi-scale models 0-6 with equal budgets: quality vs steps, cost, layers"

CURVES = [("prior_mean", "psnr"), ("prior_mean", "ssim"), ("reconstruction", "psnr"),
          ("reconstruction", "ssim")]  # fmt: skip


def step_cost(config: RunConfig) -> dict:
    """Parameters and FLOPs of one training step (forward + backward) on a random batch of the
    config's batch size and max context."""
    torch.manual_seed(0)
    model = build_model(config.model.name, config.model)
    m, s, d = config.model, config.model.image_size, config.model.viewpoint_dim
    b, k = config.data.batch_size, config.data.max_context
    batch = QueryBatch.full_context(
        torch.rand(b, k, m.image_channels, s, s),
        torch.randn(b, k, d),
        torch.rand(b, 1, m.image_channels, s, s),
        torch.randn(b, 1, d),
    )
    with FlopCounterMode(display=False) as counter:
        model.elbo(batch, config.optim.pixel_sigma().final).loss.backward()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_step_gflops": counter.get_total_flops() / 1e9,
    }


@torch.no_grad()
def held_out_terms(checkpoint: Path, data: str, scenes: int, k: int) -> dict:
    """Mean held-out NLL and KL (nats) per layer at the run's final pixel sigma."""
    model, config = load_model(checkpoint)
    dataset = open_split(data, "test", config.data.test_fraction, config.data.split_seed)
    images, viewpoints = load_scenes(dataset, scenes, seed=0)
    k = min(k, images.shape[1] - 1)
    batch = QueryBatch.full_context(
        images[:, 1 : k + 1], viewpoints[:, 1 : k + 1], images[:, :1], viewpoints[:, :1]
    )
    sigma = config.optim.pixel_sigma().final
    torch.manual_seed(0)
    terms = model.elbo(batch, sigma)
    out = {"nll_nats": terms.nll.mean().item(), "kl_nats": terms.kl.mean().item()}
    out["kl_per_layer_nats"] = {n: g.sum(1).mean().item() for n, g in terms.kl_groups.items()}
    if hasattr(model, "layer_nll"):
        torch.manual_seed(0)
        per_layer = model.layer_nll(batch, sigma)[:, 0].mean(0)
        out["nll_per_layer_nats"] = [round(x, 2) for x in per_layer.tolist()]
    return out


def run_model(path: Path, args: argparse.Namespace) -> dict:
    """Train the config at ``path`` in chunks and score every chunk; the model's record."""
    run = args.out / path.stem
    overrides = [*args.overrides, f"data.path={args.data}"]
    curve, chunk = [], None
    for chunk in train_in_chunks(path, overrides, run, args.steps, args.eval_every):
        settings = {"num_scenes": args.scenes, "num_samples": args.samples, "ks": [args.k]}
        scores = chunk_scores(chunk.checkpoint, args.data, run / f"eval-{chunk.step}", settings)
        methods = scores["rows"][0]["methods"]
        point = {"step": chunk.step, "train_seconds": chunk.train_seconds}
        for method, metric in CURVES:
            point[f"{method}_{metric}"] = methods[method][metric]
        point.update(held_out_terms(chunk.checkpoint, args.data, args.scenes, args.k))
        curve.append(point)
        print(json.dumps({"model": path.stem, **{k: point[k] for k in list(point)[:6]}}))
    reached = next((p for p in curve if p["prior_mean_psnr"] >= args.target_psnr), None)
    model, config = load_model(chunk.checkpoint)
    figures = []
    if config.model.name == "multiscale":
        data = config.data
        dataset = open_split(args.data, "test", data.test_fraction, data.split_seed)
        written = write_layer_figures(model, dataset, run / "layers", context=args.k)
        figures = [str(p) for p in written]
    return {
        "config": str(path),
        "model": config.model.name,
        **step_cost(config),
        "seconds_per_step": chunk.train_seconds / args.steps,
        "cpu_seconds_per_step": chunk.cpu_seconds / args.steps,
        "reached_target": reached and {"step": reached["step"], "s": reached["train_seconds"]},
        "final": curve[-1],
        "curve": curve,
        "layer_figures": figures,
    }


def plot_curves(records: dict[str, dict], out: Path) -> list[Path]:
    """One PNG per metric of :data:`CURVES`: every model against training steps."""
    paths = []
    for method, metric in CURVES:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, record in records.items():
            steps = [p["step"] for p in record["curve"]]
            ax.plot(steps, [p[f"{method}_{metric}"] for p in record["curve"]], label=name)
        ax.set(xlabel="training step", ylabel=f"{method} {metric}", title=f"{method} {metric}")
        ax.legend()
        path = out / f"{method}_{metric}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def markdown(records: dict[str, dict], args: argparse.Namespace) -> str:
    lines = [
        f"# Multi-scale comparison: {args.steps} steps each, K = {args.k}, {args.scenes} "
        f"held-out scenes, target prior-mean PSNR {args.target_psnr} dB",
        "",
        "| model | params | GFLOPs/step | s/step (wall) | CPU s/step | prior PSNR / SSIM | "
        "recon PSNR / SSIM | NLL | KL per layer | NLL per layer | target reached (step, s) |",
        "|---|---:|---:|---:|---:|---|---|---:|---|---|---|",
    ]
    for name, r in records.items():
        f = r["final"]
        reached = r["reached_target"]
        lines.append(
            f"| {name} | {r['parameters']:,} | {r['train_step_gflops']:.2f} | "
            f"{r['seconds_per_step']:.3f} | {r['cpu_seconds_per_step']:.3f} | "
            f"{f['prior_mean_psnr']:.2f} / "
            f"{f['prior_mean_ssim']:.3f} | {f['reconstruction_psnr']:.2f} / "
            f"{f['reconstruction_ssim']:.3f} | {f['nll_nats']:.1f} | "
            + ", ".join(f"{v:.2f}" for v in f["kl_per_layer_nats"].values())
            + f" | {f.get('nll_per_layer_nats', '-')} | "
            + (f"{reached['step']}, {reached['s']:.0f}" if reached else "not reached")
            + " |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, default=Path("configs/multiscale/cpu"))
    parser.add_argument("--models", default="0,1,2,3,4,5,6", help="model numbers to run")
    parser.add_argument("--data", required=True, help="scene store (data.path)")
    parser.add_argument("--out", type=Path, default=Path("runs/multiscale-compare"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--scenes", type=int, default=50, help="held-out scenes per evaluation")
    parser.add_argument("--samples", type=int, default=2, help="prior samples per query")
    parser.add_argument("--k", type=int, default=3, help="context views of the evaluation")
    parser.add_argument("--target-psnr", type=float, default=20.0)
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def run(args: argparse.Namespace) -> int:
    paths = {f"model{n}": args.models_dir / f"model{n}.yaml" for n in args.models.split(",")}
    for path in paths.values():
        if not path.exists():
            raise ValueError(f"no config {path}: --models takes numbers 0-6 of --models-dir")
    records = {}
    for name, path in paths.items():
        records[name] = run_model(path, args)
        report = {"args": arguments(args), "models": records}
        write_report(args.out, "multiscale-compare", report, markdown(records, args))
    plots = plot_curves(records, args.out)
    print(markdown(records, args))
    print(
        f"wrote {args.out}/multiscale-compare.json, multiscale-compare.md, "
        + ", ".join(p.name for p in plots)
    )
    return 0
