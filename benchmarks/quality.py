"""Does a speed switch change training? The same short run (model, seed, batches) under several
accel settings; prints JSON with the loss curves and the final NLL/KL of each.

    python benchmarks/quality.py --data runs/demo/data --steps 200

Uses the demo model configuration (``configs/demo.yaml`` if present, see ``bench_model.py``) and
a store of scenes at its image size; batches come from ``gqn.data.loader.make_loader`` with a
fixed seed, so every variant sees the same batches and the same initial weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch
from bench_model import demo_setup

from gqn.accel import AccelConfig, autocast, prepare_batch, prepare_model
from gqn.data.loader import make_loader
from gqn.data.samplers import StepPlan
from gqn.models import GQN

VARIANTS = {
    "fp32": AccelConfig(precision="fp32"),
    "bf16-cl": AccelConfig(precision="bf16", channels_last=True),
}


def train(args: argparse.Namespace, accel: AccelConfig) -> dict:
    config, batch_size, context, _ = demo_setup()
    torch.manual_seed(args.seed)
    model = prepare_model(GQN(config), accel, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    plan = StepPlan(batch_size, max_context=context, seed=args.seed, num_steps=args.steps)
    loader = make_loader(args.data, plan, num_workers=0)
    curve = []
    start = time.perf_counter()
    for batch in loader:
        batch = prepare_batch(batch, accel, "cpu")
        optimizer.zero_grad(set_to_none=True)
        with autocast(accel, torch.device("cpu")):
            terms = model(batch, sigma=args.sigma)
        terms.loss.backward()
        optimizer.step()
        curve.append((terms.nll.mean().item(), terms.kl.mean().item()))
    tail = curve[-args.average :]
    return {
        "accel": dataclasses.asdict(accel),
        "seconds": time.perf_counter() - start,
        "final_nll_nats": statistics.mean(n for n, _ in tail),
        "final_kl_nats": statistics.mean(k for _, k in tail),
        "curve_every_10": [[round(n, 2), round(k, 3)] for n, k in curve[::10]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("runs/demo/data"),
        help="scene store at the demo model's image size (default: runs/demo/data, from gqn demo)",
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--average", type=int, default=20, help="final = mean of the last N")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--sigma", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "manifest.json").is_file():
        parser.error(
            f"{args.data} is not a scene store: run `gqn demo` (writes runs/demo/data) or "
            "`gqn data generate`, or pass --data DIR"
        )
    results = {name: train(args, accel) for name, accel in VARIANTS.items()}
    print(json.dumps({"steps": args.steps, "data": str(args.data), "variants": results}, indent=2))


if __name__ == "__main__":
    main()
