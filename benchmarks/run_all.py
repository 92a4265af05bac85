"""The GQN benchmark suite (``make bench``): every case in a fresh process, one at a time; JSON to
stdout and to ``benchmarks/results/<machine>.json``.

    python benchmarks/run_all.py                  # all cases (CPU: ~30 min on 2 cores)
    python benchmarks/run_all.py --quick          # fewer cases and steps, -quick.json
    python benchmarks/run_all.py --only paper64   # cases whose name matches a regex
    python benchmarks/run_all.py --only viewer    # only gqn view's frames/s (bench_viewer.py)

Cases: the machine's peak FLOP/s (matmul and ConvLSTM-shaped conv2d, fp32 and bf16), then for
``paper64`` (both core options) and ``demo``: the reference path (constant inputs concatenated at
every step), the fast path, and the fast path with bf16 autocast / channels-last / torch.compile.
On a CUDA machine the device is used automatically, and ``paper64`` at batch 36 and ``demo`` at
batch 64 run in fp32 and bf16 + channels-last.
Utilisation is achieved FLOP/s over the conv2d peak of the same precision measured in this run.
Then, by run config (``bench_config.py``, fp32): a training step and sampling of the Consistent
GQN's CPU-sized (``cgqn/cpu32``) and appendix-B (``cgqn/paper64``) configs and of the thesis'
multi-scale models (``multiscale/cpu32-model0`` ... ``model6``, and the paper-sized models 0
and 2).
Last (not with --quick), case ``viewer``: the frames/s of ``gqn view``'s render endpoint
(bench_viewer.py, its own JSON: results/cpu-2core-viewer.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
WORKER = HERE / "bench_model.py"
CONFIG_WORKER = HERE / "bench_config.py"
REPO = HERE.parent
VIEWER = HERE / "bench_viewer.py"


def machine_name() -> str:
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower()
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    return f"cpu-{os.cpu_count()}core"


def cases(quick: bool, cuda: bool) -> list[tuple[str, list[str]]]:
    """(name, worker arguments) of every case, in run order: the small demo first, then paper64
    in order of importance (the compile cases last, they are the slowest to start). Sampling is
    timed in the fast-fp32 case and the best-switches case of each configuration."""
    fp32, bf16 = ["--precision", "fp32"], ["--precision", "bf16"]
    cl, off = ["--channels-last"], ["--no-sampling"]
    compile_default = ["--compile"]
    autotune = ["--compile", "--compile-mode", "max-autotune-no-cudagraphs"]
    variants = {
        "reference-fp32": ["--reference", *fp32, *off],
        "fast-fp32": fp32,
        "fast-bf16-cl": [*bf16, *cl],
        "fast-bf16": [*bf16, *off],
        "fast-fp32-cl": [*fp32, *cl, *off],
        "fast-fp32-nofuse": [*fp32, "--no-fuse-canvas", *off],
        "fast-bf16-cl-compile": [*bf16, *cl, *compile_default, *off],
        "fast-bf16-cl-compile-autotune": [*bf16, *cl, *autotune, *off],
    }
    # paper64's main comparison first, then the demo, then the remaining variants.
    plan = [
        ("paper64", "shared", ["reference-fp32", "fast-fp32", "fast-bf16-cl"]),
        ("demo", "shared", list(variants)),
        ("paper64", "shared", ["fast-bf16", "fast-fp32-cl", "fast-fp32-nofuse"]),
        ("paper64", "per_step", ["reference-fp32", "fast-fp32"]),
        ("paper64", "shared", ["fast-bf16-cl-compile"]),
    ]
    if quick:
        main = ["reference-fp32", "fast-fp32", "fast-bf16-cl"]
        plan = [("paper64", "shared", main), ("demo", "shared", main)]
    out = []
    for config, core, names in plan:
        for name in names:
            args = ["--config", config, "--core-weights", core, *variants[name]]
            out.append((f"{config}/{core}/{name}", args))
    if cuda:  # the GPU batches: is the step still launch-bound there, and which precision wins?
        for config, batch in (("paper64", "36"), ("demo", "64")):
            for name, switches in (("fast-fp32", fp32), ("fast-bf16-cl", [*bf16, *cl])):
                args = ["--config", config, *switches, "--batch", batch, *off]
                out.append((f"{config}/shared/{name}-batch{batch}", args))
    return out


CONFIG_CASES = (
    ("cgqn/cpu32", "configs/cgqn/cpu.yaml"),
    ("cgqn/paper64", "configs/cgqn/gpu.yaml"),
    *((f"multiscale/cpu32-model{i}", f"configs/multiscale/cpu/model{i}.yaml") for i in range(7)),
    ("multiscale/paper64-model0", "configs/multiscale/model0.yaml"),
    ("multiscale/paper64-model2", "configs/multiscale/model2.yaml"),
)


def config_cases(quick: bool) -> list[tuple[str, list[str]]]:
    """(name, bench_config.py arguments) of the CGQN and multi-scale cases, at each config's
    batch (the thesis' GPU batches for paper64: one step takes seconds to minutes on a CPU)."""
    steps = ["--steps", "2"] if quick else []
    return [(name, [str(REPO / path), *steps]) for name, path in CONFIG_CASES]


def run_case(args: list[str], timeout: float, worker: Path = WORKER) -> dict:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(worker), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "args": args}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-5:], "args": args}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def summarise(results: dict[str, dict], peak: dict) -> list[dict]:
    """One row per case: seconds/step, images/s, speed-up over the reference path of the same
    configuration and core option, FLOPs, utilisation, sampling, peak RSS."""
    rows = []
    for name, r in results.items():
        if "train_step_s" not in r:
            rows.append({"case": name, "error": r.get("error")})
            continue
        if r.get("model") in ("cgqn", "multiscale"):
            rows.append(config_row(name, r, peak))
            continue
        config, core = name.split("/")[:2]
        reference = results.get(f"{config}/{core}/reference-fp32", {})
        dtype = "bf16" if r["precision"] == "bf16" else "fp32"
        conv_peak = peak.get(f"conv_gate_{dtype}_flops")
        row = {
            "case": name,
            "batch": r["batch"],
            "step_s_median": round(r["train_step_s"]["median"], 3),
            "step_s_min_max": [
                round(r["train_step_s"]["min"], 3),
                round(r["train_step_s"]["max"], 3),
            ],
            "images_per_s": round(r["train_images_per_s"], 3),
            "tflop_per_step": round(r["train_step_flops"] / 1e12, 4),
            "achieved_gflops": round(r["train_achieved_flops"] / 1e9, 1),
            "utilisation_vs_conv_peak": (
                round(r["train_achieved_flops"] / conv_peak, 3) if conv_peak else None
            ),
            "peak_rss_mib": round(r["peak_memory"]["peak_rss_mib"]),
        }
        if "train_images_per_s" in reference:
            row["speedup_vs_reference"] = round(
                r["train_images_per_s"] / reference["train_images_per_s"], 2
            )
            row["flops_vs_reference"] = round(
                r["train_step_flops"] / reference["train_step_flops"], 3
            )
        if "sample_one_scene_s" in r:
            row["sample_batch_images_per_s"] = round(r["sample_batch_images_per_s"], 1)
            row["sample_64_views_one_scene_s"] = round(r["sample_one_scene_s"]["median"], 3)
        if "peak_cuda_allocated_mib" in r["peak_memory"]:
            row["peak_cuda_mib"] = round(r["peak_memory"]["peak_cuda_allocated_mib"])
        rows.append(row)
    return rows


def config_row(name: str, r: dict, peak: dict) -> dict:
    """The table row of a bench_config.py case (fp32)."""
    conv_peak = peak.get("conv_gate_fp32_flops")
    return {
        "case": name,
        "batch": r["batch"],
        "targets": r["targets"],
        "step_s_median": round(r["train_step_s"]["median"], 3),
        "images_per_s": round(r["train_images_per_s"], 3),
        "tflop_per_step": round(r["train_step_flops"] / 1e12, 4),
        "achieved_gflops": round(r["train_achieved_flops"] / 1e9, 1),
        "utilisation_vs_conv_peak": (
            round(r["train_achieved_flops"] / conv_peak, 3) if conv_peak else None
        ),
        "sample_s_median": round(r["sample_s"]["median"], 3),
        "sample_images_per_s": round(r["sample_images_per_s"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, 2 timed steps")
    parser.add_argument("--only", default="", help="run cases whose name matches this regex")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case")
    parser.add_argument("--skip", default="", help="skip cases whose name matches this regex")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per case (0: worker's)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed steps after the first")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other cases already in the JSON file"
    )
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    steps = ["--steps", "2", "--sample-repeats", "1"] if args.quick else []
    if args.steps:
        steps = ["--steps", str(args.steps), "--warmup", str(args.warmup)]

    out = args.out or HERE / "results" / f"{machine_name()}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    peak_run = run_case(["--peak"], args.timeout)
    peak = peak_run.get("peak", {})
    results: dict[str, dict] = {}
    if args.merge and out.exists():
        results = json.loads(out.read_text())["cases"]
    report: dict = {}

    def selected(name: str) -> bool:
        return not (args.only and not re.search(args.only, name)) and not (
            args.skip and re.search(args.skip, name)
        )

    plan = [(n, [*a, *steps], WORKER) for n, a in cases(args.quick, cuda)]
    plan += [(n, a, CONFIG_WORKER) for n, a in config_cases(args.quick)]
    for name, case_args, worker in plan:
        if not selected(name):
            continue
        print(f"running {name}", file=sys.stderr, flush=True)
        results[name] = run_case(case_args, args.timeout, worker)
        report = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": peak_run.get("machine"),
            "quick": args.quick,
            "peak": peak,
            "table": summarise(results, peak),
            "cases": results,
        }
        out.write_text(json.dumps(report, indent=2) + "\n")  # after every case: partial runs count
    print(json.dumps(report.get("table", []), indent=2))
    print(f"wrote {out}", file=sys.stderr)
    if not args.quick and selected("viewer"):
        print("running viewer", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(VIEWER)], check=True)


if __name__ == "__main__":
    main()
