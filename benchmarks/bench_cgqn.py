"""CGQN training step and sampling on this machine: s/step, img/s, FLOPs (the pattern of
bench_model.py, whose timing helpers it reuses; CUDA when available). One JSON line on stdout;
``make bench`` (run_all.py) runs it as the ``cgqn/*`` cases.
``python benchmarks/bench_cgqn.py [--paper]``."""

from __future__ import annotations

import argparse
import json

import torch
from bench_model import spread, timed
from torch.utils.flop_counter import FlopCounterMode

from gqn.batch import QueryBatch
from gqn.models import CGQN, CGQNConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="64x64 appendix-B sizes")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    config = CGQNConfig() if args.paper else CGQNConfig(image_size=32, num_steps=2, kernel_size=3)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = CGQN(config).to(device)
    s, b, n = config.image_size, args.batch, args.targets
    batch = QueryBatch.full_context(
        torch.rand(b, 3, 3, s, s, device=device),
        torch.randn(b, 3, 7, device=device),
        torch.rand(b, n, 3, s, s, device=device),
        torch.randn(b, n, 7, device=device),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(batch, 0.7).loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        train_step()
    step = spread(timed(train_step, device, args.steps, warmup=0))
    r = model.represent(batch.context_images, batch.context_viewpoints)

    @torch.inference_mode()
    def sample() -> None:
        model.generate(r, batch.target_viewpoints, 4)

    sampled = spread(timed(sample, device, args.steps, warmup=1))
    flops = counter.get_total_flops()
    print(json.dumps({
        "model": "cgqn", "config": "paper64" if args.paper else "cpu32", "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()), "batch": b, "targets": n,
        "train_step_s": step, "train_images_per_s": b * n / step["median"],
        "train_step_flops": flops, "train_achieved_flops": flops / step["median"],
        "sample_s": sampled, "sample_images_per_s": b * 4 * n / sampled["median"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
