"""One GQN benchmark case in this process (prints one JSON object); ``run_all.py`` runs each case in
a fresh process.

    python benchmarks/bench_model.py --config paper64 --precision bf16 --channels-last
    python benchmarks/bench_model.py --config paper64 --reference     # precompute off
    python benchmarks/bench_model.py --peak                           # machine peak FLOP/s only

A case: the training step (forward + backward + Adam) timed over ``--steps`` steps after
``--warmup``, FLOPs of one step (``FlopCounterMode``), sampling from the prior (a batch of scenes
with one query each, and ``--views`` queries of one scene with r computed once), peak memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

from gqn.accel import AccelConfig, autocast, prepare_batch, prepare_model, resolve
from gqn.batch import QueryBatch
from gqn.models import GQN, GQNConfig

ROOT = Path(__file__).resolve().parents[1]
DEMO_YAML = ROOT / "configs" / "demo.yaml"
# Used when configs/demo.yaml does not exist (yet): a small 32x32 model that trains on a laptop.
DEMO_FALLBACK = dict(
    model=dict(image_size=32, r_channels=64, hidden_channels=32, canvas_channels=32, num_steps=6),
    batch=16,
    context=5,
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def spread(times: list[float]) -> dict:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "q1": quartiles[0],
        "q3": quartiles[2],
        "n": len(times),
    }


def peak_flops(device: torch.device, repeats: int = 5) -> dict:
    """This machine's attainable FLOP/s: a large matmul and a conv2d shaped like the ConvLSTM
    gate convolution of ``paper64`` (batch 8, 384 -> 512 channels, 5x5, 16x16; contiguous and
    channels-last ``_cl``), fp32 and bf16. The best of ``repeats`` calls."""
    out = {}
    size = 4096 if device.type == "cuda" else 2048
    cases = {
        "matmul": (
            lambda dtype: (
                torch.randn(size, size, device=device, dtype=dtype),
                torch.randn(size, size, device=device, dtype=dtype),
            ),
            lambda a, b: a @ b,
            2 * size**3,
        ),
        "conv_gate": (
            lambda dtype: (
                torch.randn(8, 384, 16, 16, device=device, dtype=dtype),
                torch.randn(512, 384, 5, 5, device=device, dtype=dtype),
            ),
            lambda x, w: F.conv2d(x, w, padding=2),
            2 * 8 * 512 * 16 * 16 * 384 * 25,
        ),
    }
    for name, (make, op, flops) in cases.items():
        for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            for layout in ("", "_cl") if name == "conv_gate" else ("",):
                args = make(dtype)
                if layout:
                    args = tuple(a.contiguous(memory_format=torch.channels_last) for a in args)
                times = timed(lambda op=op, args=args: op(*args), device, repeats, warmup=2)
                out[f"{name}{layout}_{dtype_name}_flops"] = flops / min(times)
    return out


def demo_setup() -> tuple[GQNConfig, int, int, str]:
    """(model config, batch, context views, source) of the demo configuration."""
    if DEMO_YAML.exists():
        data = yaml.safe_load(DEMO_YAML.read_text()) or {}
        fields = {f.name for f in dataclasses.fields(GQNConfig)}
        model = data.get("model", data)
        config = GQNConfig(**{k: v for k, v in model.items() if k in fields})
        sections = [data, *(data.get(k) or {} for k in ("train", "data", "training"))]
        keys = ("batch_size", "batch"), ("context_views", "max_context", "context")
        batch, context = (
            next((s[k] for s in sections for k in names if isinstance(s.get(k), int)), default)
            for names, default in zip(keys, (16, 5), strict=True)
        )
        return config, int(batch), int(context), str(DEMO_YAML.relative_to(ROOT))
    model = DEMO_FALLBACK["model"]
    return GQNConfig(**model), DEMO_FALLBACK["batch"], DEMO_FALLBACK["context"], "built-in"


def model_setup(args: argparse.Namespace) -> tuple[GQNConfig, int, int, str]:
    if args.config == "paper64":
        config, batch, context, source = GQNConfig(), 8, 5, "GQNConfig() (paper)"
    else:
        config, batch, context, source = demo_setup()
    config = dataclasses.replace(
        config,
        core_weights=args.core_weights,
        precompute_constant_inputs=not args.reference,
    )
    return config, args.batch or batch, context, source


def random_batch(config: GQNConfig, batch: int, context: int, device: torch.device) -> QueryBatch:
    s, c = config.image_size, config.image_channels
    g = torch.Generator().manual_seed(0)
    return QueryBatch.full_context(
        torch.rand(batch, context, c, s, s, generator=g).to(device),
        torch.randn(batch, context, 7, generator=g).to(device),
        torch.rand(batch, 1, c, s, s, generator=g).to(device),
        torch.randn(batch, 1, 7, generator=g).to(device),
    )


def peak_memory(device: torch.device) -> dict:
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["peak_cuda_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_case(args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    config, batch_size, context, source = model_setup(args)
    accel = resolve(
        AccelConfig(
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile,
            compile_mode=args.compile_mode,
        ),
        device,
    )
    eager = GQN(config).to(device)
    eager.draw.fuse_canvas = eager.draw.fuse_canvas and not args.no_fuse_canvas
    batch = random_batch(config, batch_size, context, device)
    batch = prepare_batch(batch, accel, device)
    optimizer = torch.optim.Adam(eager.parameters(), lr=5e-4)

    def train_step(model: torch.nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(accel, device):
            loss = model(batch, sigma=0.7).loss
        loss.backward()
        optimizer.step()

    # The first (eager) step is the warm-up and counts FLOPs; a compiled model pays for its
    # compilation in its own first step, reported as first_step_s.
    with FlopCounterMode(display=False) as counter:
        train_step(eager)
    flops = counter.get_total_flops()
    model = prepare_model(eager, accel, device)
    start = time.perf_counter()
    if accel.compile:
        train_step(model)
    sync(device)
    first_step = time.perf_counter() - start
    step_times = timed(lambda: train_step(model), device, args.steps, args.warmup)
    train_memory = peak_memory(device)
    step = spread(step_times)

    result = {
        "config": args.config,
        "config_source": source,
        "model": dataclasses.asdict(config),
        "parameters": sum(p.numel() for p in eager.parameters()),
        "batch": batch_size,
        "context_views": context,
        "path": "reference" if args.reference else "fast",
        "precision": accel.precision,
        "channels_last": accel.channels_last,
        "compile": accel.compile,
        "compile_mode": accel.compile_mode if accel.compile else None,
        "fuse_canvas": eager.draw._fused(),
        "first_step_s": first_step,
        "train_step_s": step,
        "train_images_per_s": batch_size / step["median"],
        "train_step_flops": flops,
        "train_achieved_flops": flops / step["median"],
        "train_memory": train_memory,
    }
    if not args.no_sampling:
        result.update(sampling(eager, config, batch, accel, device, args))
    result["peak_memory"] = peak_memory(device)
    return result


def sampling(
    model: GQN,
    config: GQNConfig,
    batch: QueryBatch,
    accel: AccelConfig,
    device: torch.device,
    args: argparse.Namespace,
) -> dict:
    """Prior sampling in eager mode: a batch of scenes with one query each, and ``args.views``
    queries of one scene (r computed once for the scene, then ``model.generate``)."""
    model.eval()
    generator = torch.Generator(device).manual_seed(0)
    views = torch.randn(1, args.views, 7, device=device)

    @torch.inference_mode()
    def batch_of_scenes() -> None:
        with autocast(accel, device):
            model.sample(
                batch.context_images,
                batch.context_viewpoints,
                batch.target_viewpoints,
                generator=generator,
            )

    @torch.inference_mode()
    def one_scene() -> None:
        with autocast(accel, device):
            r = model.represent(batch.context_images[:1], batch.context_viewpoints[:1])
            model.generate(r, views, generator=generator)

    scenes = spread(timed(batch_of_scenes, device, args.sample_repeats, warmup=1))
    scene = spread(timed(one_scene, device, args.sample_repeats, warmup=1))
    model.train()
    return {
        "sample_batch_s": scenes,
        "sample_batch_images_per_s": batch.num_scenes / scenes["median"],
        "sample_one_scene_views": args.views,
        "sample_one_scene_s": scene,
        "sample_one_scene_images_per_s": args.views / scene["median"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["paper64", "demo"], default="paper64")
    parser.add_argument("--core-weights", choices=["shared", "per_step"], default="shared")
    parser.add_argument("--reference", action="store_true", help="precompute_constant off")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-mode", default="default")
    parser.add_argument("--batch", type=int, default=0, help="0: the configuration's batch")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=0, help="untimed steps after the first")
    parser.add_argument("--no-fuse-canvas", action="store_true", help="full-res canvas per step")
    parser.add_argument("--views", type=int, default=64, help="query views of one scene")
    parser.add_argument("--sample-repeats", type=int, default=3)
    parser.add_argument("--no-sampling", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--peak", action="store_true", help="only the machine's peak FLOP/s")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result = {"machine": machine_info(device)}
    if args.peak:
        result["peak"] = peak_flops(device)
    else:
        result.update(run_case(args, device))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
