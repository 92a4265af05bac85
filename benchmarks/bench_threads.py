"""Training-step time of the demo model with 1 vs 2 torch threads, idle and with a competing
busy process (issue 14: on a 2-core machine, 2 threads lost 2.3x to 1 thread when another
process was busy). Writes ``benchmarks/results/<name>-threads.json``.

    python benchmarks/bench_threads.py --steps 10 --name cpu-2core
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from pathlib import Path

import torch
from bench_model import DEMO_YAML, machine_info

from gqn.batch import QueryBatch
from gqn.models import GQN
from gqn.run_config import RunConfig
from gqn.typed_config import load_yaml

RESULTS = Path(__file__).resolve().parent / "results"


def busy_loop(stop: multiprocessing.synchronize.Event) -> None:
    """A competing process: one core kept busy until ``stop``."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def step_times(threads: int, steps: int, warmup: int = 2) -> list[float]:
    """Seconds per training step (forward, backward, Adam) of the demo model, batch of demo.yaml."""
    torch.set_num_threads(threads)
    cfg = load_yaml(RunConfig, DEMO_YAML)
    torch.manual_seed(0)
    model = GQN(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    s, b, k = cfg.model.image_size, cfg.data.batch_size, 3
    batch = QueryBatch.full_context(
        torch.rand(b, k, 3, s, s),
        torch.randn(b, k, 7),
        torch.rand(b, 1, 3, s, s),
        torch.randn(b, 1, 7),
    )
    out = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = model(batch, 1.0).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--name", default="cpu")
    args = p.parse_args()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for load in ("idle", "busy"):
        stop = ctx.Event()
        competitor = ctx.Process(target=busy_loop, args=(stop,)) if load == "busy" else None
        if competitor is not None:
            competitor.start()
        try:
            for threads in (1, 2):
                times = step_times(threads, args.steps)
                rows.append(
                    {"load": load, "threads": threads, "median_ms": statistics.median(times) * 1e3}
                )
                print(json.dumps(rows[-1]), flush=True)
        finally:
            stop.set()
            if competitor is not None:
                competitor.join()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.name}-threads.json"
    out.write_text(
        json.dumps({"machine": machine_info(torch.device("cpu")), "rows": rows}, indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
