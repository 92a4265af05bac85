"""Loader throughput: decoded context+query images/s with 0, 1, 2 DataLoader workers.

Generates (once, cached) a store of Shepard-Metzler scenes, then times ``make_loader`` at
batch 36, K uniform in 0..14, 64x64. Prints JSON and writes
``benchmarks/results/cpu-2core-loader.json``. Usage::

    python benchmarks/bench_loader.py [--scenes 200] [--steps 40] [--cache DIR]

Without ``--cache`` the stores go to a fresh temporary directory, removed afterwards; pass a
directory to keep them between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from gqn.data.generate import generate_dataset
from gqn.data.loader import make_loader
from gqn.data.manifest import bytes_per_image
from gqn.data.samplers import StepPlan
from gqn.data.scenes import make_family
from gqn.data.store import SceneStore

RESULTS = Path(__file__).parent / "results" / "cpu-2core-loader.json"


def time_loader(store: Path, workers: int, steps: int, batch: int) -> dict:
    plan = StepPlan(batch, max_context=14, num_steps=steps + 3)
    loader = make_loader(store, plan, split="all", num_workers=workers)
    it = iter(loader)
    for _ in range(3):  # warm-up: worker start, first shard open + sha256
        next(it)
    images, t0 = 0, time.perf_counter()
    for b in it:
        images += b.num_scenes * (b.context_images.shape[1] + 1)
    dt = time.perf_counter() - t0
    return {
        "workers": workers,
        "steps": steps,
        "images": images,
        "seconds": round(dt, 3),
        "images_per_s": round(images / dt, 1),
        "query_images_per_s": round(steps * batch / dt, 1),
    }


def store_stats(root: Path) -> dict:
    m = SceneStore(root).manifest
    h, w = m.image_size
    bpi = bytes_per_image(m)
    return {
        "scenes": m.num_scenes,
        "views": m.views,
        "image_size": [h, w],
        "bytes_per_image": round(bpi, 1),
        "raw_bytes_per_image": h * w * 3,
        "ratio_to_raw": round(bpi / (h * w * 3), 4),
    }


def run(args: argparse.Namespace, cache: Path) -> None:
    """Generate (or reuse) the stores under ``cache``, time the loader, print and save JSON."""
    sm = cache / f"shepard-metzler-{args.scenes}"
    generate_dataset(
        make_family("shepard-metzler", parts=5, image_size=64), sm, args.scenes, progress=False
    )
    rooms = cache / f"rooms-{args.rooms_scenes}"
    generate_dataset(make_family("rooms", image_size=64), rooms, args.rooms_scenes, progress=False)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "batch": args.batch,
        "max_context": 14,
        "image_size": 64,
        "disk": {"shepard-metzler-5": store_stats(sm), "rooms-ring": store_stats(rooms)},
        "loader": [time_loader(sm, w, args.steps, args.batch) for w in (0, 1, 2)],
    }
    text = json.dumps(result, indent=1)
    print(text)
    RESULTS.write_text(text + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=200)
    p.add_argument("--rooms-scenes", type=int, default=20)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=36)
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="directory for the generated stores (default: a temporary one)",
    )
    args = p.parse_args()
    if args.cache is None:
        with tempfile.TemporaryDirectory(prefix="gqn-bench-") as tmp:
            run(args, Path(tmp))
    else:
        run(args, args.cache)


if __name__ == "__main__":
    main()
