"""One time-boxed GPU session (issue 13): speed benchmarks, then time-to-quality trainings side
by side on the GPU, each scored on held-out scenes while it trains.

    python benchmarks/gpu_session.py --out OUT --minutes 8.5 [--external CMD]

Runs, stores and checkpoints go under ``--work`` (default ``runs/gpu-session``); ``OUT`` gets
only what should come back from a lent machine: ``session.tar.gz``, ``session.log`` and the
exported weights.

A GPU is lent for minutes, so everything is driven by one deadline and every result is written
as soon as it exists (a run cut short still returns what it measured):

1. **data**, rendered by parallel CPU workers: the main job's store (2,000 Shepard-Metzler
   scenes x 15 views at 32x32, seed 0: the store of the CPU time-to-quality run), a
   30,000-scene store (seed 1, so it holds none of the first store's held-out scenes) and 5,000
   scenes at 64x64, as the chosen runs need them;
2. **speed**, while the stores render: ``run_all.py``'s paper64 and demo cases (fp32, bf16,
   channels-last, the GPU batches) with no training beside them; ``bench-gpu.json``;
3. **learning**: every run of :data:`RUNS` is a ``gqn train`` process until the deadline; this
   process scores the newest unscored checkpoint of each run in turn with the eval protocol of
   docs/evaluation.md §2 (50 held-out scenes, 4 prior samples, K = 1 and 3; the 32x32 runs all
   on the main job's held-out scenes) and rewrites ``ttq-NAME.json`` / ``.md`` (the format of
   ``time_to_quality.py``) after each score. ``--external`` runs one more command beside them
   (a comparison model that scores itself; ``{work}`` and ``{python}`` in it are replaced by
   the work folder and this Python);
4. at the deadline every training is stopped (SIGTERM: it checkpoints), its last checkpoint is
   scored and exported (fp16, ``OUT/NAME.pt``), and ``OUT/session.tar.gz`` packs the reports and
   logs.

Wall minutes are those of runs sharing one GPU (and 16 CPU cores), so they are an upper bound
for each run alone; the speed benchmarks of phase 2 are the per-step numbers. ``--runs``
picks runs of :data:`RUNS` by name; the next lease's run (issue 13: the GPU recipe alone, as long
as the lease allows, scored more precisely):

    python benchmarks/gpu_session.py --out OUT --minutes 9.3 --runs gpu-small \
        --bench-seconds 0 --eval-scenes 200 --eval-samples 8
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.eval.evaluate import evaluate_checkpoint
from gqn.models.pretrained import export_weights
from gqn.run_config import load_run_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_quality import pose_gaps, write_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
log = logging.getLogger("gpu_session")

DEVICE = {"train": "cuda"}  # --smoke: "cpu"
EVAL = {"num_scenes": 50, "num_samples": 4, "ks": [1, 3]}
STORES = {  # name: (image size, scenes, seed)
    "sm32": (32, 2000, 0),
    "sm32-30k": (32, 30000, 1),
    "sm64": (64, 5000, 0),
}
GPU_LOG = [
    "device=cuda",
    "data.num_workers=3",
    "optim.max_steps=10000000",
    "log.keep_last=10000",
    "log.image_every=10000000",
    "log.every=200",
    "threads=1",
]


@dataclass
class Run:
    """One training of phase 3: ``config`` with ``overrides`` on store ``train``, scored on the
    held-out scenes of store ``score``."""

    name: str
    config: str
    overrides: list[str]
    train: str
    score: str
    every: int = 1000  # steps between checkpoints (= scores)
    export: bool = True  # fp16 weights back in OUT (a paper-sized model is over the 16 MB)
    process: subprocess.Popen | None = None
    started: float = 0.0
    load_at_start: list[float] = field(default_factory=list)
    scored: dict[int, dict] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)


RUNS = [
    # the main job's configuration as it is (batch 16, its schedules): the CPU run's GPU twin
    Run("gpu-demo-sm32", "configs/demo.yaml", [], "sm32", "sm32"),
    # the same model at GPU scale: 15x the scenes, batch 64, the schedules 4x as long
    Run(
        "gpu-demo-sm32-30k-b64",
        "configs/demo.yaml",
        ["data.batch_size=64", "optim.lr_steps=16000", "optim.sigma_steps=10800"],
        "sm32-30k",
        "sm32",
    ),
    # the main job's configuration in fp32 (TF32 convolutions) instead of auto's bf16
    Run("gpu-demo-sm32-fp32", "configs/demo.yaml", ["accel.precision=fp32"], "sm32", "sm32"),
    # the GPU recipe of the demo's model as shipped (fp32), alone on the GPU: the next lease's run
    Run("gpu-small", "configs/gpu-small.yaml", [], "sm32-30k", "sm32", every=2000),
    # the GPU config (paper-sized model, bf16) on 64x64 scenes, as the public port's runner
    # trains (batch 64, K <= 3); the lease of 2026-11-30 ran it with K <= 14
    Run(
        "gpu-paper-sm64",
        "configs/gpu.yaml",
        ["data.max_context=3"],
        "sm64",
        "sm64",
        every=500,
        export=False,
    ),
]


def make_store(name: str, root: Path) -> Path:
    """Render store ``name`` of :data:`STORES` under ``root`` (resumable), on all CPU cores but
    two (on an H200 host the GPU renderer was slower: 30,000 scenes at 32x32 in 124 s)."""
    size, scenes, seed = STORES[name]
    path = root / name
    family = make_family("shepard-metzler", image_size=size, views=15)
    start = time.time()
    workers = max(1, (os.cpu_count() or 1) - 2)
    generate_dataset(family, path, scenes, seed=seed, progress=False, workers=workers)
    log.info("store %s: %d scenes in %.0f s (%d workers)", name, scenes, time.time() - start,
             workers)  # fmt: skip
    return path


def make_stores(root: Path, names: set[str]) -> dict[str, Path]:
    """The stores ``names`` of :data:`STORES`, one after the other."""
    return {name: make_store(name, root) for name in sorted(names)}


BENCH = (
    r"^(paper64/shared/(reference-fp32|fast-fp32|fast-bf16-cl|fast-bf16|fast-fp32-cl)"
    r"|demo/shared/(fast-fp32|fast-bf16-cl)|.*-batch\d+)$"
)


def run_benchmarks(out: Path, budget_s: float, only: str) -> None:
    """Phase 2: run_all.py's cases matching ``only`` on the GPU, within ``budget_s``."""
    cmd = [
        sys.executable,
        str(HERE / "run_all.py"),
        "--only",
        only,
        "--timeout",
        "60",
        "--steps",
        "20",
        "--warmup",
        "5",
        "--out",
        str(out / "bench-gpu.json"),
    ]
    bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        bench.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:  # stop run_all.py and the case it runs, off the GPU
        os.killpg(bench.pid, signal.SIGKILL)
        bench.wait()
        log.warning("benchmarks stopped at their %.0f s budget", budget_s)


def start(run: Run, stores: dict[str, Path], out: Path) -> None:
    """Start the run's ``gqn train`` process (log in ``out/NAME.log``, run in ``out/NAME``)."""
    args = [
        sys.executable,
        "-m",
        "gqn",
        "train",
        "--config",
        run.config,
        *GPU_LOG,
        f"log.checkpoint_every={run.every}",
        *run.overrides,
        f"data.path={stores[run.train]}",
        f"out_dir={out / run.name}",
    ]
    logfile = open(out / f"{run.name}.log", "w")  # noqa: SIM115 - lives as long as the process
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run.process = subprocess.Popen(
        args, stdout=logfile, stderr=subprocess.STDOUT, cwd=REPO, env=env
    )
    run.started, run.load_at_start = time.time(), list(os.getloadavg())
    log.info("started %s: %s", run.name, shlex.join(args[1:]))


def checkpoints(run: Run, out: Path) -> dict[int, Path]:
    """The run's finished checkpoints (those with their checksum sidecar) by step."""
    found = {}
    for path in (out / run.name / "checkpoints").glob("step_*.pt"):
        if path.with_name(path.name + ".sha256").exists():
            found[int(path.stem.split("_")[1])] = path
    return found


def score(run: Run, step: int, path: Path, stores: dict[str, Path], out: Path) -> None:
    """Score one checkpoint and rewrite the run's time-to-quality report."""
    minutes = (path.stat().st_mtime - run.started) / 60
    result = evaluate_checkpoint(
        path, stores[run.score], out / run.name / f"eval-{step}", device=DEVICE["train"], **EVAL
    )
    config = load_run_config(run.config, [*GPU_LOG, *run.overrides])
    run.scored[step] = {
        "step": step,
        "train_minutes": minutes,
        "cpu_minutes": None,  # the host's CPU time says little about a GPU run
        "query_images": step * config.data.batch_size * config.data.num_targets,
        "k": pose_gaps(result),
    }
    header = {
        "name": run.name,
        "config": run.config,
        "overrides": run.overrides,
        "data": f"{run.train} (scored on {run.score})",
        "device": torch.cuda.get_device_name(0) if DEVICE["train"] == "cuda" else "cpu",
        "threads": config.threads,
        "load_average_1_5_15_min": {"start": run.load_at_start, "end": list(os.getloadavg())},
        "note": "wall minutes of runs sharing one GPU",
        "eval": {"scenes": EVAL["num_scenes"], "samples": EVAL["num_samples"], "ks": EVAL["ks"]},
    }
    write_report(header, [run.scored[s] for s in sorted(run.scored)], out)
    gaps = {k: round(v["pose_gap_db"], 2) for k, v in run.scored[step]["k"].items()}
    log.info("%s step %d (%.1f min): pose gap %s", run.name, step, minutes, gaps)


def score_newest(runs: list[Run], stores: dict[str, Path], out: Path) -> bool:
    """Score the newest unscored checkpoint of the run that waited longest; False if none."""
    for run in sorted(runs, key=lambda r: max(r.scored, default=0)):
        done = run.scored.keys() | run.failed
        fresh = {s: p for s, p in checkpoints(run, out).items() if s not in done}
        if fresh:
            step = max(fresh)
            try:
                score(run, step, fresh[step], stores, out)
            except Exception as err:  # one bad score must not end the session
                log.warning("%s step %d: scoring failed: %s", run.name, step, err)
                run.failed.add(step)
            return True
    return False


def smoke() -> None:
    """Shrink the session to a CPU dry run of a few minutes: 24-scene stores, tiny models,
    a checkpoint every 3 steps, 2 scenes and 1 sample per score."""
    DEVICE["train"] = "cpu"
    for name, (size, _, seed) in STORES.items():
        STORES[name] = (size, 24, seed)
    EVAL.update(num_scenes=2, num_samples=1)
    tiny = [
        "model.r_channels=8",
        "model.hidden_channels=8",
        "model.canvas_channels=8",
        "model.num_steps=1",
        "data.batch_size=2",
        "data.num_workers=0",
    ]
    GPU_LOG[:] = ["device=cpu" if x == "device=cuda" else x for x in GPU_LOG] + tiny
    for run in RUNS:
        run.every = 3
        run.overrides = [x for x in run.overrides if not x.startswith("data.batch_size")]


def pack(out: Path, work: Path, runs: list[Run]) -> None:
    """``out/session.tar.gz``: the reports, logs and metrics of ``work``."""
    with tarfile.open(out / "session.tar.gz", "w:gz") as tar:
        for path in sorted(work.glob("*")):
            if path.suffix in (".json", ".md", ".log"):
                tar.add(path, arcname=path.name)
        for run in runs:
            metrics = work / run.name / "metrics.jsonl"
            if metrics.exists():
                tar.add(metrics, arcname=f"{run.name}-metrics.jsonl")
        if (work / "external").exists():
            tar.add(work / "external", arcname="external")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="what comes back")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "gpu-session")
    parser.add_argument("--minutes", type=float, default=8.5, help="the whole session")
    parser.add_argument("--bench-seconds", type=float, default=75)
    parser.add_argument("--final-seconds", type=float, default=50, help="kept for phase 4")
    parser.add_argument("--eval-scenes", type=int, default=EVAL["num_scenes"])
    parser.add_argument("--eval-samples", type=int, default=EVAL["num_samples"])
    parser.add_argument("--external", default="", help="one more training command to run")
    parser.add_argument("--bench", default=BENCH, help="regex of run_all.py's cases to run")
    default_runs = "gpu-demo-sm32,gpu-demo-sm32-30k-b64,gpu-paper-sm64"
    parser.add_argument("--runs", default=default_runs, help="names of RUNS, comma-separated")
    parser.add_argument("--smoke", action="store_true", help="a CPU dry run with tiny models")
    args = parser.parse_args()
    EVAL.update(num_scenes=args.eval_scenes, num_samples=args.eval_samples)
    if args.smoke:
        smoke()
    out, work = args.out, args.work
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        handlers=[logging.FileHandler(out / "session.log"), logging.StreamHandler()],
    )
    t0 = time.time()
    end = t0 + 60 * args.minutes
    stop_training = end - args.final_seconds
    names = args.runs.split(",")
    unknown = sorted(set(names) - {r.name for r in RUNS})
    if unknown:
        parser.error(f"unknown runs {unknown}; valid: {', '.join(r.name for r in RUNS)}")
    runs = [r for r in RUNS if r.name in names]
    with ThreadPoolExecutor(1) as pool:  # the stores render while the benchmarks run
        needed = {r.train for r in runs} | {r.score for r in runs}
        rendering = pool.submit(make_stores, work / "data", needed)
        if args.bench_seconds > 0:
            run_benchmarks(work, args.bench_seconds, args.bench)
        stores = rendering.result()
    log.info("data ready after %.0f s", time.time() - t0)
    for run in runs:
        start(run, stores, work)
    external = None
    if args.external:
        external = subprocess.Popen(
            args.external.replace("{work}", str(work)).replace("{python}", sys.executable),
            shell=True,
            cwd=REPO,
            stdout=open(work / "external.log", "w"),  # noqa: SIM115 - lives with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while time.time() < stop_training:
        if not score_newest(runs, stores, work):
            time.sleep(2)
    for run in runs:
        run.process.send_signal(signal.SIGTERM)
    if external is not None:
        os.killpg(external.pid, signal.SIGTERM)
        try:
            external.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(external.pid, signal.SIGKILL)
    for run in runs:
        try:
            run.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.process.kill()
    while time.time() < end - 15 and score_newest(runs, stores, work):
        pass
    for run in runs:
        found = checkpoints(run, work)
        if found and run.export:
            export_weights(found[max(found)], out / f"{run.name}.pt")
    pack(out, work, runs)
    log.info("session done after %.0f s", time.time() - t0)


if __name__ == "__main__":
    main()
