"""``gqn demo``: the main job — data, training, evaluation, samples and a report, resumably.

Stages (each skipped when its output exists and was made from the same inputs, so re-running
continues an interrupted demo; docs/evaluation.md section 4 says what each compares):

1. ``data``: render a Shepard-Metzler store into ``OUT/data`` (resumes per shard);
2. ``train``: train with ``configs/demo.yaml`` into ``OUT/run`` (``--resume`` from the latest
   checkpoint; skipped once the final step's checkpoint exists, refused if it has other
   settings);
3. ``eval``: ``gqn eval`` of the final checkpoint into ``OUT/eval``;
4. ``sample``: the sample grid and orbit GIF of held-out scene 0, and ground truth | posterior |
   prior for a few held-out scenes, into ``OUT/figures``;
5. ``report``: ``OUT/report.md``.

Wall times per stage are kept in ``OUT/stages.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The repository's configs/demo.yaml (a source checkout), whatever the working directory.
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
STAGES = ("data", "train", "eval", "sample", "report")
# The demo's sizes, and those of --tiny: a seconds-long run of every stage (tests, smoke
# checks; not a meaningful model). A size given on the command line wins over both.
FULL = dict(scenes=2000, views=15, eval_scenes=100, samples=8, frames=36, compare=6)
TINY = dict(scenes=12, views=3, eval_scenes=2, samples=2, frames=3, compare=2)
TINY_OVERRIDES = [
    "model.r_channels=16",
    "model.hidden_channels=8",
    "model.canvas_channels=8",
    "model.num_steps=2",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.test_fraction=0.5",
    "data.preview_scenes=2",
    "optim.max_steps=3",
    "log.every=1",
    "log.image_every=3",
    "log.checkpoint_every=3",
    "log.tensorboard=false",
    "log.progress=false",
]


@dataclasses.dataclass
class DemoSettings:
    """What one demo makes: its folder, training config and overrides, and sizes (``None``:
    :data:`FULL`'s, or :data:`TINY`'s with ``tiny``)."""

    out: Path = Path("runs/demo")
    config: Path = DEFAULT_CONFIG
    overrides: list[str] = dataclasses.field(default_factory=list)
    scenes: int | None = None
    views: int | None = None
    eval_scenes: int | None = None
    samples: int | None = None
    frames: int | None = None
    compare: int | None = None
    data_seed: int = 0
    tiny: bool = False


class StageFailed(RuntimeError):
    """A stage ended without its output (e.g. training interrupted); rerun to continue."""


class StageClock:
    """Wall time per stage, persisted in ``stages.json`` so reused stages keep their time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.seconds: dict[str, float] = dict(self.data.get("seconds", {}))
        self.reused: list[str] = []

    def done(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = seconds
        self.path.write_text(json.dumps({"seconds": self.seconds}, indent=2) + "\n")

    def reuse(self, stage: str) -> None:
        self.reused.append(stage)
        self.seconds.setdefault(stage, 0.0)


def _data_stage(settings: DemoSettings, image_size: int, clock: StageClock) -> Path:
    from gqn.data.generate import generate_dataset, procedural_source
    from gqn.data.manifest import read_manifest
    from gqn.data.scenes import make_family

    path = settings.out / "data"
    family = make_family("shepard-metzler", image_size=image_size, views=settings.views)
    if (path / "manifest.json").exists():
        m = read_manifest(path)
        source = json.loads(json.dumps(procedural_source(family, settings.data_seed)))
        if m.complete and m.num_scenes >= settings.scenes and m.source == source:
            clock.reuse("data")
            return path
    start = time.perf_counter()
    generate_dataset(family, path, settings.scenes, seed=settings.data_seed, shard_scenes=500)
    clock.done("data", time.perf_counter() - start)
    return path


MARKER = "made_with.json"  # what a finished eval or sample stage was made from


def _stage_inputs(data: Path, checkpoint: Path) -> dict[str, Any]:
    """What eval and sample outputs depend on besides their own arguments: the checkpoint file
    (path and modification time, so a retrained run is not mistaken for the old one) and the
    number of scenes in the store (the test split is drawn over it)."""
    from gqn.data.manifest import read_manifest

    return {
        "checkpoint": str(checkpoint),
        "checkpoint_mtime_ns": checkpoint.stat().st_mtime_ns,
        "data_scenes": read_manifest(data).num_scenes,
    }


def _made_with(marker: Path, made_with: dict[str, Any], outputs: list[Path]) -> bool:
    """Whether a stage's ``outputs`` all exist and were made from ``made_with`` (no or
    unreadable marker: no)."""
    if not all(p.exists() for p in outputs):
        return False
    try:
        return json.loads(marker.read_text()) == made_with
    except (OSError, json.JSONDecodeError):
        return False


def _mark(marker: Path, made_with: dict[str, Any]) -> None:
    from gqn.io import atomic_write

    with atomic_write(marker) as f:
        f.write(json.dumps(made_with).encode())


def _settings_differences(config: Any, state: dict[str, Any]) -> list[str]:
    """Keys (``model.*``, ``optim.*``, ``data.*``, ``seed``) whose values differ between a
    finished run's checkpoint and the requested config; logging, health checks, speed switches,
    the device and a lower ``optim.max_steps`` do not change what the run trained."""
    from gqn.models.loading import run_config_of
    from gqn.train.checkpoint import config_differences
    from gqn.typed_config import to_dict

    trained, wanted = to_dict(run_config_of(state)), to_dict(config)
    for settings in (trained, wanted):
        for key in ("log", "health", "accel", "device", "out_dir"):
            settings.pop(key, None)
        settings["optim"].pop("max_steps")
    return config_differences(trained, wanted)


def _train_stage(settings: DemoSettings, data: Path, clock: StageClock):
    from gqn.models.loading import find_latest, load_checkpoint
    from gqn.run_config import load_run_config
    from gqn.train.trainer import train

    run_dir = settings.out / "run"
    overrides = [*(TINY_OVERRIDES if settings.tiny else []), *settings.overrides]
    overrides += [f"data.path={data}", f"out_dir={run_dir}"]
    config = load_run_config(settings.config, overrides)
    latest = find_latest(run_dir) if run_dir.exists() else None
    if latest is not None:
        state = load_checkpoint(latest, resume=True)
        if state["step"] >= config.optim.max_steps:
            diffs = _settings_differences(config, state)
            if diffs:
                raise ValueError(
                    f"{run_dir} holds a finished run of other settings: {'; '.join(diffs)} "
                    "(run != requested); remove it or choose another --out"
                )
            clock.reuse("train")
            return config, latest
    start = time.perf_counter()
    result = train(config, resume=latest is not None)
    if result.status != "finished" or result.checkpoint is None:
        raise StageFailed(f"training did not finish: {result.message}")
    clock.done("train", time.perf_counter() - start)  # after a resume: the last session only
    return config, result.checkpoint


def _eval_stage(settings: DemoSettings, data: Path, checkpoint: Path, clock: StageClock):
    from gqn.eval.evaluate import METHODS, PROTOCOL, evaluate_checkpoint

    out = settings.out / "eval"
    marker = out / MARKER
    made_with = {
        **_stage_inputs(data, checkpoint),
        "methods": list(METHODS),
        "protocol": PROTOCOL,
        "scenes": settings.eval_scenes,
        "samples": settings.samples,
    }
    if _made_with(marker, made_with, [out / "eval.json"]):
        clock.reuse("eval")
        return json.loads((out / "eval.json").read_text())
    marker.unlink(missing_ok=True)  # outputs of an interrupted redo are never reused
    start = time.perf_counter()
    result = evaluate_checkpoint(
        checkpoint,
        data,
        out,
        num_scenes=settings.eval_scenes,
        num_samples=settings.samples,
        device="auto",
    )
    _mark(marker, made_with)
    clock.done("eval", time.perf_counter() - start)
    return result


def _sample_stage(settings: DemoSettings, data: Path, checkpoint: Path, clock: StageClock):
    from gqn.data.dataset import open_split
    from gqn.device import pick_device
    from gqn.eval.inputs import load_dataset_scene
    from gqn.eval.sample import sample_scene, truth_posterior_prior
    from gqn.models.loading import load_model
    from gqn.viz.grids import comparison_grid, strip

    figures = settings.out / "figures"
    names = ("samples.png", "orbit.gif", "context.png", "comparison.png")
    marker = figures / MARKER
    made_with = {
        **_stage_inputs(data, checkpoint),
        "frames": settings.frames,
        "compare": settings.compare,
    }
    if _made_with(marker, made_with, [figures / n for n in names]):
        clock.reuse("sample")
        return {n: figures / n for n in names}
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    model, config = load_model(checkpoint, device=pick_device("auto"))
    frac, split_seed = config.data.test_fraction, config.data.split_seed
    images, poses = load_dataset_scene(data, 0, "test", frac, split_seed)
    k = max(1, images.shape[0] - 4)
    sample_scene(
        model,
        images,
        poses,
        figures,
        context=k,
        num_samples=4,
        orbit_frames=settings.frames,
        scale=3,
    )
    strip(images[:k], scale=3).save(figures / "context.png")
    test = open_split(data, "test", frac, split_seed)
    columns = truth_posterior_prior(model, test, settings.compare, context=k)
    comparison_grid(columns, scale=3).save(figures / "comparison.png")
    _mark(marker, made_with)
    clock.done("sample", time.perf_counter() - start)
    return {n: figures / n for n in names}


def config_summary(config: Any, data: Path, settings: DemoSettings) -> dict[str, Any]:
    m, o, d = config.model, config.optim, config.data
    return {
        "data": f"{data}: Shepard-Metzler, {settings.scenes} scenes x {settings.views} views, "
        f"{m.image_size}x{m.image_size}, test fraction {d.test_fraction}",
        "model": f"{m.representation} representation, r {m.r_channels}, hidden "
        f"{m.hidden_channels}, canvas {m.canvas_channels}, z {m.latent_channels}, "
        f"L = {m.num_steps}, {m.core_weights} core",
        "optimisation": f"{o.max_steps} steps, batch {d.batch_size}, lr {o.lr_start:g} -> "
        f"{o.lr_end:g} over {o.lr_steps}, sigma {o.sigma_start:g} -> {o.sigma_end:g} over "
        f"{o.sigma_steps}"
        + (
            f"; the first {d.pool_steps} steps on only {d.pool_scenes} scenes (scene pool)"
            if d.pool_scenes
            else ""
        ),
        "config": f"{settings.config} (+ overrides {settings.overrides})"
        if settings.overrides
        else str(settings.config),
    }


def run_demo(settings: DemoSettings) -> Path:
    """Run (or continue) every stage into ``settings.out``; returns the report's path.

    Raises :class:`StageFailed` when training ends without its final checkpoint."""
    from gqn.run_config import load_run_config
    from gqn.viz.demo_report import ReportInputs, write_report
    from gqn.viz.plots import plot_loss_curves, read_jsonl

    if not settings.config.is_file():
        raise FileNotFoundError(
            f"training config {settings.config} does not exist; pass one with --config PATH"
        )
    sizes = TINY if settings.tiny else FULL
    settings = dataclasses.replace(
        settings, **{k: v for k, v in sizes.items() if getattr(settings, k) is None}
    )
    settings.out.mkdir(parents=True, exist_ok=True)
    clock = StageClock(settings.out / "stages.json")
    image_size = load_run_config(settings.config, settings.overrides).model.image_size
    data = _data_stage(settings, image_size, clock)
    config, checkpoint = _train_stage(settings, data, clock)
    result = _eval_stage(settings, data, checkpoint, clock)
    figures = _sample_stage(settings, data, checkpoint, clock)
    start = time.perf_counter()
    loss_png = plot_loss_curves(
        read_jsonl(settings.out / "run" / "metrics.jsonl"),
        settings.out / "figures" / "loss_curves.png",
        keys=("nll_nats", "kl_nats", "recon_psnr_db"),
    )
    clock.done("report", time.perf_counter() - start)
    inputs = ReportInputs(
        context_png=figures["context.png"],
        comparison_png=figures["comparison.png"],
        samples_png=figures["samples.png"],
        orbit_gif=figures["orbit.gif"],
        metrics_png=settings.out / "eval" / "metrics_vs_k.png",
        loss_png=loss_png,
        eval_result=result,
        stage_seconds={s: clock.seconds[s] for s in STAGES if s in clock.seconds},
        reused=clock.reused,
        config=config_summary(config, data, settings),
    )
    return write_report(inputs, settings.out / "report.md")
