"""Time to quality: training minutes and query images until the prior uses the query pose.

The number this project competes on (issue 13): train a config in chunks of ``--eval-every``
steps; after each chunk score the latest checkpoint with the eval protocol of
docs/evaluation.md §2 on held-out scenes at K = 1 and 3, and record the *pose gap*: PSNR of the
prior mean minus PSNR of the same prior rendered at another view's pose (the control
``prior_mean_other_pose``). Reports, per K, the first step, training wall minutes and query images
at which the gap reaches 1.0 and 1.5 dB, with the whole curve, the CPU flags and threads.
Training runs through :func:`gqn.experiments.runs.train_in_chunks`, so a rerun resumes (and a
larger ``--max-steps`` continues the same run); "CPU minutes" is the training process' CPU
time, steadier than wall time on a shared machine (the load average is recorded).

    python benchmarks/time_to_quality.py --config configs/demo.yaml --data data/demo-sm32 \
        --name demo --eval-every 500 --max-steps 6000

Training time is the wall time of the training chunks only (evaluation excluded), on this
machine with the config's ``threads``; writes ``benchmarks/results/ttq-NAME.json`` and ``.md``.
Not a test: run it on a quiet machine, one benchmark at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from gqn.experiments.runs import chunk_scores, train_in_chunks
from gqn.io import atomic_write
from gqn.run_config import load_run_config

RESULTS = Path(__file__).resolve().parent / "results"
GAPS_DB = (1.0, 1.5)


def cpu_flags() -> dict:
    """Model name and the flags that decide the speed of CPU training (lscpu)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor(), "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
    return {
        "model": fields.get("Model name", "").strip(),
        "cores": int(fields.get("CPU(s)", "0").strip() or 0),
        "flags": [f for f in wanted if f in flags],
    }


def pose_gaps(result: dict) -> dict[int, dict]:
    """Per K: prior-mean PSNR, control PSNR, their difference, and the prior mean's SSIM."""
    out = {}
    for row in result["rows"]:
        m = row["methods"]
        prior, control = m["prior_mean"]["psnr"], m["prior_mean_other_pose"]["psnr"]
        out[row["k"]] = {
            "prior_mean_psnr_db": prior,
            "control_psnr_db": control,
            "pose_gap_db": prior - control,
            "pose_gap_se_db": row.get("pose_gap", {}).get("psnr_db_se"),  # paired, over queries
            "prior_mean_ssim": m["prior_mean"]["ssim"],
            "nearest_view_psnr_db": m["nearest_view"]["psnr"],
            "mean_image_psnr_db": m["mean_image"]["psnr"],
        }
    return out


def first_reached(curve: list[dict], k: int, gap: float) -> dict | None:
    for point in curve:
        if point["k"][k]["pose_gap_db"] >= gap:
            keys = ("step", "train_minutes", "cpu_minutes", "query_images")
            return {key: point[key] for key in keys}
    return None


def _minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(report: dict) -> str:
    """The curve as a table (per evaluation: step, minutes, images; per K: prior mean, control,
    gap ± its standard error where the eval has it, SSIM) and when each gap was first reached."""
    ks = report["eval"]["ks"]
    cpu = report["cpu"]
    lines = [
        f"# Time to quality: {report['name']} ({report['date']})",
        "",
        f"`{report['config']}` {' '.join(report['overrides'])} on `{report['data']}`; "
        f"{cpu['model']}, {cpu['cores']} cores, flags {', '.join(cpu['flags'])}; "
        + (f"GPU {report['device']}; " if report.get("device") else "")
        + f"threads {report['threads']}; load average (1/5/15 min) at start "
        f"{', '.join(f'{x:.1f}' for x in report['load_average_1_5_15_min']['start'])}. "
        f"{report['eval']['scenes']} held-out scenes, {report['eval']['samples']} prior samples.",
        "",
        "| step | train min (wall) | CPU min | query images | "
        + " | ".join(f"K={k}: prior mean dB / SSIM | control dB | pose gap dB" for k in ks)
        + " |",
        "|---:|---:|---:|---:|" + "---|---:|---:|" * len(ks),
    ]
    for p in report["curve"]:
        by_k = {int(k): v for k, v in p["k"].items()}  # JSON keys are strings
        cells = [
            f"{by_k[k]['prior_mean_psnr_db']:.2f} / {by_k[k]['prior_mean_ssim']:.3f} | "
            f"{by_k[k]['control_psnr_db']:.2f} | {by_k[k]['pose_gap_db']:.2f}"
            + (
                ""
                if by_k[k].get("pose_gap_se_db") is None
                else f" ± {by_k[k]['pose_gap_se_db']:.2f}"
            )
            for k in ks
        ]
        lines.append(
            f"| {p['step']} | {p['train_minutes']:.1f} | {_minutes(p['cpu_minutes'])} | "
            f"{p['query_images']:,} | " + " | ".join(cells) + " |"
        )
    lines += ["", "First reached (step, wall and CPU minutes, query images):", ""]
    for key, hit in report["reached"].items():
        text = (
            f"step {hit['step']}, {hit['train_minutes']:.1f} wall min, "
            f"{_minutes(hit['cpu_minutes'])} CPU min, {hit['query_images']:,} images"
            if hit
            else f"not within {report['curve'][-1]['step']} steps"
        )
        lines.append(f"- {key}: {text}")
    return "\n".join(lines) + "\n"


def write_report(header: dict, curve: list[dict], folder: Path) -> Path:
    """Write ``folder/ttq-NAME.json`` and ``.md`` (atomically: a stopped run leaves the last
    complete report): ``header`` (name, config, overrides, data, threads, load average, eval
    settings, optionally the GPU) with the date, the CPU, torch, the ``curve`` and when each gap
    of :data:`GAPS_DB` was first reached. Returns the JSON path."""
    ks = header["eval"]["ks"]
    report = {
        **header,
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_flags(),
        "torch": torch.__version__,
        "reached": {
            f"k{k}_gap_{gap}db": first_reached(curve, k, gap) for k in ks for gap in GAPS_DB
        },
        "curve": curve,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ttq-{header['name']}.json"
    for target, text in (
        (path, json.dumps(report, indent=2) + "\n"),
        (path.with_suffix(".md"), markdown(report)),
    ):
        with atomic_write(target) as f:
            f.write(text.encode())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True, help="scene store (data.path)")
    parser.add_argument("--name", required=True, help="result name: results/ttq-NAME.json")
    parser.add_argument("--out", default=None, help="run directory (default runs/ttq-NAME)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--scenes", type=int, default=50, help="held-out scenes per evaluation")
    parser.add_argument("--samples", type=int, default=4, help="prior samples per query")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    out = Path(args.out or f"runs/ttq-{args.name}")
    ks = [1, 3]
    config = load_run_config(args.config, [*args.overrides, f"data.path={args.data}"])
    images_per_step = config.data.batch_size * config.data.num_targets
    load_before = os.getloadavg()
    curve: list[dict] = []
    overrides = [*args.overrides, f"data.path={args.data}"]
    for chunk in train_in_chunks(args.config, overrides, out, args.max_steps, args.eval_every):
        settings = {"num_scenes": args.scenes, "num_samples": args.samples, "ks": ks}
        scores = chunk_scores(chunk.checkpoint, args.data, out / f"eval-{chunk.step}", settings)
        point = {
            "step": chunk.step,
            "train_minutes": chunk.train_seconds / 60,
            "cpu_minutes": chunk.cpu_seconds / 60,
            "query_images": chunk.step * images_per_step,
            "k": pose_gaps(scores),
        }
        curve.append(point)
        gaps = {f"gap_k{k}": round(point["k"][k]["pose_gap_db"], 3) for k in ks}
        print(json.dumps({"step": chunk.step, **gaps}), flush=True)
        if all(point["k"][k]["pose_gap_db"] >= max(GAPS_DB) for k in ks):
            break
    header = {
        "name": args.name,
        "config": args.config,
        "overrides": args.overrides,
        "data": args.data,
        "threads": config.threads,
        "load_average_1_5_15_min": {"start": load_before, "end": os.getloadavg()},
        "eval": {"scenes": args.scenes, "samples": args.samples, "ks": ks},
    }
    path = write_report(header, curve, RESULTS)
    print(f"wrote {path} and {path.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
