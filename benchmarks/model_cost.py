"""Parameter count and forward+backward FLOPs of a GQN configuration (prints JSON).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for one training step's
forward and backward (the ELBO of a batch), with K context views per scene.

    python benchmarks/model_cost.py                     # paper configuration, both core options
    python benchmarks/model_cost.py --batch 8 --context 5
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from gqn.batch import QueryBatch
from gqn.models import GQN, GQNConfig


def training_flops(model: GQN, batch: QueryBatch) -> int:
    with FlopCounterMode(display=False) as counter:
        model.elbo(batch, sigma=0.7).loss.backward()
    return counter.get_total_flops()


def random_batch(config: GQNConfig, batch: int, context: int) -> QueryBatch:
    s, c = config.image_size, config.image_channels
    return QueryBatch.full_context(
        torch.rand(batch, context, c, s, s),
        torch.randn(batch, context, 7),
        torch.rand(batch, 1, c, s, s),
        torch.randn(batch, 1, 7),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = []
    for core_weights in ("shared", "per_step"):
        for precompute in (True, False):
            config = GQNConfig(core_weights=core_weights, precompute_constant_inputs=precompute)
            model = GQN(config)
            flops = training_flops(model, random_batch(config, args.batch, args.context))
            results.append(
                {
                    "config": "paper64",
                    "core_weights": core_weights,
                    "precompute_constant_inputs": precompute,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "batch": args.batch,
                    "context_views": args.context,
                    "train_step_flops": flops,
                    "train_step_tflops": round(flops / 1e12, 3),
                }
            )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
