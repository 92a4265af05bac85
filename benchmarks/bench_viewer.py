"""Frames/s of ``gqn view``'s render endpoint, each configuration in a fresh process.

    python benchmarks/bench_viewer.py                    # grid -> results/cpu-2core-viewer.json
    python benchmarks/bench_viewer.py --one demo 32 1    # one configuration, JSON on stdout

A configuration is a model config (``demo``: configs/demo.yaml, ``paper``: configs/paper.yaml),
an image size (the config's ``model.image_size`` overridden) and a torch thread count. The model
is untrained (speed does not depend on the weights) and the scene synthetic: 5 views on a ring,
3 of them the context. Timed through the HTTP API in process (FastAPI's TestClient: request
parsing, one ``generate`` call, PNG encoding, JSON), as the page calls it:

- ``frames_per_s``: one camera per request, the camera moving, the context fixed (r kept) —
  what dragging the camera feels like;
- ``batched_frames_per_s``: 4 cameras per request (one ``generate`` call);
- ``context_change_s``: a request right after the context changed (r recomputed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "cpu-2core-viewer.json"
CONFIGS = {"demo": ROOT / "configs" / "demo.yaml", "paper": ROOT / "configs" / "paper.yaml"}
GRID = [(c, s, t) for c in CONFIGS for s in (32, 64) for t in (1, 2)]
VIEWS, CONTEXT, BATCH = 5, [0, 1, 2], 4


def cpu_features() -> dict:
    """CPU model and the vector/bf16 features that decide CPU speed (from /proc/cpuinfo)."""
    from gqn.device import cpu_model_and_flags

    model, flags = cpu_model_and_flags()
    return {
        "cpu": model or "unknown",
        "cores": os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
    }


def timed(client, body: dict, repeats: int, budget_s: float, move) -> list[float]:
    """Seconds of up to ``repeats`` requests (at least 2, within ``budget_s``)."""
    times = []
    start = time.perf_counter()
    for i in range(repeats):
        move(body, i)
        t = time.perf_counter()
        out = client.post("/api/render", json=body)
        times.append(time.perf_counter() - t)
        if out.status_code != 200:
            raise RuntimeError(out.text)
        if i >= 1 and time.perf_counter() - start > budget_s:
            break
    return times


def run_one(config: str, size: int, threads: int, repeats: int, budget_s: float) -> dict:
    """Time one configuration in this process -> result record."""
    import torch
    from fastapi.testclient import TestClient

    from gqn.models.registry import build_model
    from gqn.run_config import load_run_config
    from gqn.viewer.server import create_app
    from gqn.viewer.session import OrbitCamera, ViewerSession

    torch.set_num_threads(threads)
    run = load_run_config(CONFIGS[config], [f"model.image_size={size}"])
    torch.manual_seed(0)
    model = build_model(run.model.name, run.model)
    yaws = [2 * math.pi * i / VIEWS for i in range(VIEWS)]
    poses = torch.stack([OrbitCamera(y, 0.3, 3.3).pose().float() for y in yaws])
    scene = (torch.rand(VIEWS, 3, size, size), poses)
    client = TestClient(create_app(ViewerSession(model, lambda index: scene, 1), "synthetic"))

    def orbit(n: int):
        def move(body: dict, i: int) -> None:
            body["cameras"] = [
                {"yaw": 0.05 * (i * n + j), "pitch": 0.2, "distance": 3.3} for j in range(n)
            ]

        return move

    body = {"scene": 0, "context": CONTEXT, "cameras": [], "seed": 0}
    warmup = timed(client, body, 2, 0, orbit(1))
    single = timed(client, body, repeats, budget_s, orbit(1))
    batched = timed(client, body, repeats, budget_s, orbit(BATCH))

    def new_context(body: dict, i: int) -> None:
        body["context"] = CONTEXT[: 1 + i % len(CONTEXT)] if i % 2 else CONTEXT
        body["cameras"] = [{"yaw": 0.1, "pitch": 0.2, "distance": 3.3}]

    context = timed(client, body, 4, budget_s, new_context)
    return {
        "config": config,
        "image_size": size,
        "threads": threads,
        "model": run.model.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_s": round(sum(warmup), 3),
        "frames_per_s": round(1 / statistics.median(single), 2),
        "frames_per_s_best": round(1 / min(single), 2),
        "render_ms_all": [round(1000 * t, 1) for t in single],
        "batched_frames_per_s": round(BATCH / statistics.median(batched), 2),
        "context_change_s": round(statistics.median(context), 3),
        "timed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("CONFIG", "SIZE", "THREADS"))
    parser.add_argument("--repeats", type=int, default=20, help="requests per timing (max)")
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per timing (max)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.one:
        config, size, threads = args.one
        print(json.dumps(run_one(config, int(size), int(threads), args.repeats, args.budget)))
        return
    results = []
    for config, size, threads in GRID:
        print(f"viewer {config} {size}x{size} threads={threads}", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--one", config, str(size), str(threads)]
        cmd += ["--repeats", str(args.repeats), "--budget", str(args.budget)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        if proc.returncode != 0:
            results.append(
                {
                    "config": config,
                    "image_size": size,
                    "threads": threads,
                    "error": proc.stderr.strip().splitlines()[-3:],
                }
            )
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {
        "benchmark": "bench_viewer",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": cpu_features(),
        "notes": "untrained models; synthetic 5-view scene, 3 context views; fp32 on CPU; the "
        "machine was shared with other jobs while timing (load_average_1min_after), so these "
        "are lower bounds of an idle machine's speed.",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            [
                {
                    k: r.get(k)
                    for k in (
                        "config",
                        "image_size",
                        "threads",
                        "frames_per_s",
                        "batched_frames_per_s",
                        "context_change_s",
                    )
                }
                for r in results
            ],
            indent=1,
        )
    )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
