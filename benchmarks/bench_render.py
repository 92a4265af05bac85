"""Render throughput of the scene families (images/s), each configuration in a fresh process.

    python benchmarks/bench_render.py                 # full grid -> results/cpu-2core-render.json
    python benchmarks/bench_render.py --one rooms 64 1  # one configuration, JSON on stdout
    python benchmarks/bench_render.py --sizes 64 --merge  # re-time some, keep the other records

Each configuration: set the thread count, render a warm-up batch (this includes the
torch.compile compilation when compiling), then time ``--repeats`` batches of fresh scenes and
report the median and best images/s. Runs one configuration at a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "cpu-2core-render.json"
IMAGES_PER_BATCH = {32: 960, 64: 480, 128: 160}


def run_one(family: str, size: int, compile_: bool, threads: int, repeats: int) -> dict:
    """Time one configuration in this process -> result record."""
    import torch

    from gqn.data.scenes import make_family

    torch.set_num_threads(threads)
    fam = make_family(family, image_size=size, compile=compile_)
    scenes = max(1, IMAGES_PER_BATCH[size] // fam.views_per_scene)
    start = time.perf_counter()
    fam.render_scenes(0, range(scenes))
    warmup = time.perf_counter() - start
    rates = []
    for r in range(repeats):
        first = (r + 1) * scenes
        start = time.perf_counter()
        frames, _ = fam.render_scenes(0, range(first, first + scenes))
        rates.append(frames.shape[0] * frames.shape[1] / (time.perf_counter() - start))
    return {
        "family": family,
        "image_size": size,
        "compile": compile_,
        "threads": threads,
        "images_per_batch": scenes * fam.views_per_scene,
        "warmup_s": round(warmup, 2),
        "images_per_s_median": round(statistics.median(rates), 1),
        "images_per_s_best": round(max(rates), 1),
        "images_per_s_all": [round(x, 1) for x in rates],
        "timed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("FAMILY", "SIZE", "COMPILE"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--families", nargs="+", default=["shepard-metzler", "rooms"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--compile", choices=["0", "1"], nargs="+", default=["0", "1"])
    parser.add_argument(
        "--merge", action="store_true", help="keep records of --out for configurations not re-timed"
    )
    args = parser.parse_args()
    if args.one:
        family, size, comp = args.one
        record = run_one(family, int(size), comp == "1", args.threads, args.repeats)
        print(json.dumps(record))
        return
    results = []
    for family in args.families:
        for size in args.sizes:
            for comp in args.compile:
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    family,
                    str(size),
                    comp,
                    "--threads",
                    str(args.threads),
                    "--repeats",
                    str(args.repeats),
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
                record = json.loads(out.stdout.strip().splitlines()[-1])
                print(json.dumps(record), flush=True)
                results.append(record)
    import torch

    if args.merge and args.out.exists():

        def key(r: dict) -> tuple:
            return r["family"], r["image_size"], r["compile"]

        fresh = {key(r) for r in results}
        old = json.loads(args.out.read_text())["results"]
        results = [r for r in old if key(r) not in fresh] + results
        results.sort(key=lambda r: (r["family"] != "shepard-metzler", *key(r)[1:]))
    report = {
        "benchmark": "bench_render",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__,
        },
        "notes": "shepard-metzler: 5 parts, 15 views, no shadows; rooms: ring camera, 1-3 "
        "objects, 10 views, hard shadows; antialias 1; float32; CPU.",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
