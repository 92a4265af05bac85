"""A training step and sampling of any run config's model (the registry builds it: CGQN,
multi-scale, GQN) on this machine: s/step, img/s, FLOPs (the timing helpers of bench_model.py;
CUDA when available). The batch is the config's ``data.batch_size`` (or ``--batch``) with
``data.max_context`` context views and ``data.num_targets`` targets. One JSON line on stdout;
``make bench`` (run_all.py) runs it as the ``cgqn/*`` and ``multiscale/*`` cases.

    python benchmarks/bench_config.py configs/multiscale/cpu/model2.yaml [--batch 8]
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_model import spread, timed
from torch.utils.flop_counter import FlopCounterMode

from gqn.batch import QueryBatch
from gqn.models.registry import build_model
from gqn.run_config import load_run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="run config YAML")
    parser.add_argument("--batch", type=int, default=0, help="0: the config's data.batch_size")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    config = load_run_config(args.config, [])
    m, data = config.model, config.data
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model(m.name, m).to(device)
    s, c, d = m.image_size, m.image_channels, m.viewpoint_dim
    b, k, n = args.batch or data.batch_size, data.max_context, data.num_targets
    batch = QueryBatch.full_context(
        torch.rand(b, k, c, s, s, device=device),
        torch.randn(b, k, d, device=device),
        torch.rand(b, n, c, s, s, device=device),
        torch.randn(b, n, d, device=device),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    sigma = config.optim.pixel_sigma().final

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.elbo(batch, sigma).loss.backward()
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
        "model": m.name, "config": args.config, "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()), "batch": b, "context": k,
        "targets": n, "train_step_s": step, "train_images_per_s": b * n / step["median"],
        "train_step_flops": flops, "train_achieved_flops": flops / step["median"],
        "sample_s": sampled, "sample_images_per_s": b * 4 * n / sampled["median"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
