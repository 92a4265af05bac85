"""What the narratives experiments share (seed 003 §4.1): their training runs, the held-out
test videos and rolling a trained model over chosen frames of them.

The three experiments (``narratives-min-mse``, ``-samples``, ``-consistency``) train the same
five runs in one ``--runs`` directory, so whichever runs first trains them and the others reuse
the checkpoints (:func:`gqn.experiments.runs.train_in_chunks` never retrains a finished chunk):

============  ===================  ==================================================
run           family               model
============  ===================  ==================================================
``ts-cgqn``   traveling-salesman   CGQN (``narratives-cgqn-SCALE.yaml``)
``ts-gqn``    traveling-salesman   GQN, timestamps as viewpoints (``narratives-gqn``)
``ts-det``    traveling-salesman   CGQN without its latent (``model.latent=false``)
``cr-cgqn``   color-reaction       CGQN
``cr-gqn``    color-reaction       GQN
============  ===================  ==================================================

Test videos are scenes ``0 .. n-1`` of the family rendered with ``--seed`` (default 1): the
online training and preview streams use 64-bit hashed seeds (:func:`gqn.train.data.online_seed`),
so they never render these.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gqn.data.collate import frames_to_images
from gqn.data.scenes import Story, make_family
from gqn.experiments.runs import Chunk, train_in_chunks
from gqn.models.base import SceneModel
from gqn.models.loading import load_model
from gqn.run_config import RunConfig, load_run_config
from gqn.viewpoint import viewpoint_encoder

RUNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ts-cgqn": ("cgqn", "traveling-salesman", ()),
    "ts-gqn": ("gqn", "traveling-salesman", ()),
    "ts-det": ("cgqn", "traveling-salesman", ("model.latent=false",)),
    "cr-cgqn": ("cgqn", "color-reaction", ()),
    "cr-gqn": ("gqn", "color-reaction", ()),
}
"""run name -> (config stem, data.family, overrides)."""


def add_run_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The arguments every narratives experiment takes (``out``: its default ``--out``)."""
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/narratives"),
        help="directory of the shared training runs (reused, resumable)",
    )
    parser.add_argument(
        "--configs",
        type=Path,
        default=Path("configs/cgqn"),
        help="directory of narratives-{cgqn,gqn}-SCALE.yaml",
    )
    parser.add_argument("--scale", default="cpu", help="config size: cpu | gpu")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per run (default: the config's optim.max_steps)",
    )
    parser.add_argument("--every", type=int, default=250, help="steps per training chunk")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the test videos")
    parser.add_argument("--out", type=Path, default=Path(out), help="output directory")  # fmt: skip


def run_config(args: argparse.Namespace, run: str) -> tuple[Path, list[str], RunConfig]:
    """(config path, overrides, the loaded config) of ``run``; ValueError for an unknown run or
    a missing config file."""
    if run not in RUNS:
        raise ValueError(f"unknown narratives run {run!r}; choose one of {sorted(RUNS)}")
    stem, family, overrides = RUNS[run]
    path = args.configs / f"narratives-{stem}-{args.scale}.yaml"
    if not path.exists():
        raise ValueError(f"{path}: no such config; check --configs and --scale (cpu | gpu)")
    merged = [f"data.family={family}", *overrides, *args.set]
    return path, merged, load_run_config(path, merged)


def train(args: argparse.Namespace, run: str) -> Iterator[Chunk]:
    """Train ``run`` into ``args.runs / run`` in chunks of ``args.every`` steps (finished chunks
    are handed back untouched)."""
    path, overrides, config = run_config(args, run)
    steps = args.steps or config.optim.max_steps
    yield from train_in_chunks(path, overrides, args.runs / run, steps, min(args.every, steps))


def trained(args: argparse.Namespace, run: str) -> SceneModel:
    """The model of ``run`` at its last chunk (training it first if needed), on the CPU."""
    *_, last = train(args, run)
    return load(last.checkpoint)


def load(checkpoint: Path) -> SceneModel:
    model, _ = load_model(checkpoint, models=("cgqn", "gqn"))
    return model


@dataclass(frozen=True)
class Videos:
    """Test videos of a family: frames (b, T, 3, s, s) in [0, 1], viewpoints (b, T, d) encoded
    timestamps, and each video's story (its ground truth)."""

    images: torch.Tensor
    viewpoints: torch.Tensor
    stories: list[Story]


def test_videos(args: argparse.Namespace, run: str, count: int) -> Videos:
    """``count`` test videos of ``run``'s family and parameters (seed ``args.seed``)."""
    if count < 1:
        raise ValueError(f"the number of test videos must be >= 1, got {count}")
    data = run_config(args, run)[2].data
    family = make_family(data.family, **data.family_params)
    frames, raw = family.render_scenes(args.seed, range(count))
    encoder = viewpoint_encoder(family.viewpoint)
    viewpoints = encoder.encode(torch.as_tensor(raw[..., : encoder.raw_dim]).float())
    images = frames_to_images(torch.as_tensor(frames))
    return Videos(images, viewpoints, [family.story(args.seed, i) for i in range(count)])


@torch.no_grad()
def roll(
    model: SceneModel,
    videos: Videos,
    context: Sequence[int],
    targets: Sequence[int],
    num_samples: int,
    seed: int = 0,
    batch: int = 4,
) -> torch.Tensor:
    """(b, S, m, 3, s, s): S = ``num_samples`` samples of the frames ``targets`` (m indices) of
    every video given its frames ``context`` — one scene latent per sample for CGQN, every frame
    drawn on its own for GQN. Noise from a generator seeded by ``seed``; ``batch`` videos at a
    time."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    ctx, tgt = list(context), list(targets)
    out = []
    for lo in range(0, len(videos.images), batch):
        x = videos.images[lo : lo + batch]
        v = videos.viewpoints[lo : lo + batch]
        r = model.represent(x[:, ctx], v[:, ctx])
        out.append(model.generate(r, v[:, tgt], num_samples, generator))
    return torch.cat(out)


def as_video(frames: torch.Tensor) -> torch.Tensor:
    """(T, 3, s, s) -> (T, s, s, 3), the layout of :mod:`gqn.eval.narratives`' readers."""
    return frames.permute(0, 2, 3, 1)
