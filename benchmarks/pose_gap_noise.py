"""How much of a pose gap is the prior's noise: one checkpoint, the same held-out queries,
``--draws`` redraws of the noise (``evaluate(..., noise_seed=...)``); the gap's spread over the
draws beside the paired standard error each draw reports.

    python benchmarks/pose_gap_noise.py CHECKPOINT --data STORE --name NAME \
        [--scenes 50] [--samples 4] [--draws 8]

Writes ``benchmarks/results/pose-gap-noise-NAME.json`` (per K: every draw's gap and standard
error, their mean and standard deviation; the CPU). Not a test. docs/experiments/learning.md,
"The noise of the pose gap", reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gqn.data.dataset import open_split
from gqn.eval.baselines import mean_image
from gqn.eval.evaluate import MEAN_IMAGE_SCENES, evaluate
from gqn.io import atomic_write
from gqn.models.loading import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_quality import RESULTS, cpu_flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True, help="scene store (its held-out split)")
    parser.add_argument("--name", required=True, help="result name")
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="the queries (the protocol's: 0)")
    args = parser.parse_args()
    model, config = load_model(args.checkpoint)
    frac, split_seed = config.data.test_fraction, config.data.split_seed
    test = open_split(args.data, "test", frac, split_seed)
    train_mean = mean_image(open_split(args.data, "train", frac, split_seed), MEAN_IMAGE_SCENES)
    sigma = config.optim.pixel_sigma().final
    ks = [1, 3]
    draws: dict[int, list[dict]] = {k: [] for k in ks}
    for draw in range(args.draws):
        result = evaluate(
            model,
            test,
            train_mean,
            sigma,
            num_scenes=args.scenes,
            num_samples=args.samples,
            seed=args.seed,
            noise_seed=1000 + draw,
            ks=ks,
        )
        for row in result["rows"]:
            draws[row["k"]].append(row["pose_gap"])
        print(json.dumps({"draw": draw, **{k: v[-1] for k, v in draws.items()}}), flush=True)
    summary = {}
    for k, gaps in draws.items():
        values = np.array([g["psnr_db"] for g in gaps])
        summary[k] = {
            "gap_psnr_db": values.tolist(),
            "gap_psnr_db_se": [g["psnr_db_se"] for g in gaps],
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if values.size > 1 else None,
        }
    report = {
        "name": args.name,
        "checkpoint": args.checkpoint,
        "data": args.data,
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_flags(),
        "torch": torch.__version__,
        "settings": {
            "scenes": args.scenes,
            "samples": args.samples,
            "seed": args.seed,
            "noise_seeds": [1000 + d for d in range(args.draws)],
        },
        "k": summary,
    }
    path = RESULTS / f"pose-gap-noise-{args.name}.json"
    with atomic_write(path) as f:
        f.write((json.dumps(report, indent=2) + "\n").encode())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
