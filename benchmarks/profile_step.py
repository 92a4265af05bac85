"""Profile one training step (``torch.profiler``): where the time goes, how many operator calls a
step makes, and whether anything synchronises with the host (prints JSON).

    python benchmarks/profile_step.py --config demo
    python benchmarks/profile_step.py --config paper64 --precision bf16 --channels-last
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch
from bench_model import model_setup, random_batch
from torch.profiler import ProfilerActivity, profile

from gqn.accel import AccelConfig, autocast, prepare_batch, prepare_model
from gqn.models import GQN

# Operators that copy a device tensor to the host and therefore wait for the device.
SYNC_OPS = ("aten::item", "aten::_local_scalar_dense", "aten::nonzero", "cudaStreamSynchronize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["paper64", "demo"], default="demo")
    parser.add_argument("--core-weights", choices=["shared", "per_step"], default="shared")
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config, batch_size, context, _ = model_setup(args)
    accel = AccelConfig(precision=args.precision, channels_last=args.channels_last)
    torch.manual_seed(0)
    model = prepare_model(GQN(config), accel, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    batch = random_batch(config, batch_size, context, device)
    batch = prepare_batch(batch, accel, device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(accel, device):
            loss = model(batch, sigma=0.7).loss
        loss.backward()
        optimizer.step()

    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    calls = Counter({e.key: e.count for e in events})
    print(
        json.dumps(
            {
                "config": args.config,
                "precision": args.precision,
                "channels_last": args.channels_last,
                "operator_calls_per_step": sum(calls.values()),
                "host_syncs": {op: calls[op] for op in SYNC_OPS if calls[op]},
                "self_cpu_ms_total": total / 1e3,
                "top_self_cpu": [
                    {
                        "op": e.key,
                        "calls": e.count,
                        "ms": round(e.self_cpu_time_total / 1e3, 1),
                        "share": round(e.self_cpu_time_total / total, 3),
                    }
                    for e in top
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
