"""What the MNIST-dice experiments share (seed 003 §4.2, appendices B-C): their arguments, the
store, the trained runs, held-out hidden-face batches and the negative ELBO of a batch.

One ``--runs DIR`` holds everything, so each experiment reuses what another trained:

    DIR/data-<size>/                    the mnist-dice store (generated when absent)
    DIR/<setting>/<model>-seed<s>/      a run, trained in chunks (:mod:`gqn.experiments.runs`)

A **setting** is a pixel-sigma schedule (:data:`SETTINGS`) scaled to the run's length: its
schedule settles at :data:`SETTLE` of the steps. Both models train on hidden-face splits
(``data.view_split``): 1-3 context views that miss one side of the die, 3 targets that show it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from gqn.batch import QueryBatch
from gqn.data.collate import collate_scenes
from gqn.data.dataset import open_split
from gqn.data.dice_sampler import store_faces
from gqn.data.generate import generate_dataset
from gqn.data.scenes import make_family
from gqn.data.scenes.dice_views import ViewSplit, split_views
from gqn.experiments.runs import Chunk, train_in_chunks
from gqn.losses import ELBOTerms
from gqn.models.base import SceneModel
from gqn.run_config import load_run_config

log = logging.getLogger(__name__)

MODELS = ("cgqn", "gqn")
SETTLE = 2 / 3  # fraction of the run after which the pixel sigma keeps its final value
TARGETS = 3  # targets of the unseen face (figure 6, the 3-target KL)


@dataclass(frozen=True)
class Setting:
    """A pixel-sigma schedule of appendices B-C: ``optim.*`` overrides whose step counts total
    ``length`` at scale 1, and the sigma the test ELBO is computed at (the schedule's last)."""

    overrides: tuple[str, ...]
    length: int
    eval_sigma: float

    def scaled(self, steps: int) -> list[str]:
        """The overrides with ``optim.sigma_scale`` so the schedule settles at SETTLE * steps."""
        return [*self.overrides, f"optim.sigma_scale={SETTLE * steps / self.length:.6g}"]


SETTINGS = {
    # appendix B, MNIST cube: 2.0 for 100k steps, 0.2 for 50k, 0.4 for 50k, then 0.9
    "piecewise": Setting(
        (
            "optim.sigma_schedule=piecewise",
            "optim.sigma_values=[2.0, 0.2, 0.4, 0.9]",
            "optim.sigma_durations=[100000, 50000, 50000]",
        ),
        200_000,
        0.9,
    ),
    # appendix B, every other dataset: linear 2.0 -> 0.5 over 100k steps
    "linear": Setting(
        (
            "optim.sigma_schedule=linear",
            "optim.sigma_start=2.0",
            "optim.sigma_end=0.5",
            "optim.sigma_steps=100000",
        ),
        100_000,
        0.5,
    ),
}


def add_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The arguments every dice experiment takes; ``out``: the default ``--out``."""
    parser.add_argument("--runs", default="runs/dice", help="runs and data (default runs/dice)")
    parser.add_argument("--out", default=out, help=f"report directory (default {out})")
    parser.add_argument("--cgqn-config", default="configs/cgqn/dice-cgqn-cpu.yaml")
    parser.add_argument("--gqn-config", default="configs/cgqn/dice-gqn-cpu.yaml")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the configs')"
    )
    parser.add_argument("--every", type=int, default=100, help="steps per chunk (default 100)")
    parser.add_argument(
        "--scenes", type=int, default=1000, help="scenes of the generated store (default 1000)"
    )
    parser.add_argument(
        "--test-scenes", type=int, default=64, help="held-out scenes scored (default 64)"
    )
    parser.add_argument("--contexts", type=int, default=3, help="context views K (default 3)")
    parser.add_argument("--eval-seed", type=int, default=0, help="splits and noise (default 0)")


def config_path(args: argparse.Namespace, model: str) -> str:
    return args.cgqn_config if model == "cgqn" else args.gqn_config


def total_steps(args: argparse.Namespace, model: str) -> int:
    """``--steps``, or the model's config's ``optim.max_steps``."""
    if args.steps is not None:
        return args.steps
    return load_run_config(config_path(args, model)).optim.max_steps


def ensure_data(args: argparse.Namespace) -> Path:
    """The run directory's mnist-dice store at the configs' image size (rendered when absent
    or incomplete: ``--scenes`` scenes, 12 views, dataset seed 0)."""
    size = load_run_config(args.cgqn_config).model.image_size
    if size != load_run_config(args.gqn_config).model.image_size:
        raise ValueError("--cgqn-config and --gqn-config must have the same model.image_size")
    path = Path(args.runs) / f"data-{size}"
    generate_dataset(make_family("mnist-dice", image_size=size), path, args.scenes, progress=False)
    return path


def run_dir(args: argparse.Namespace, setting: str, model: str, seed: int) -> Path:
    return Path(args.runs) / setting / f"{model}-seed{seed}"


def train(
    args: argparse.Namespace, data: Path, setting: str, model: str, seed: int
) -> Iterator[Chunk]:
    """The chunks of run ``(setting, model, seed)`` (trained, or reused when already there)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown pixel-sigma setting {setting!r}; valid: {list(SETTINGS)}")
    steps = total_steps(args, model)
    overrides = [
        f"data.path={data}",
        "data.view_split=hidden-face",
        f"seed={seed}",
        *SETTINGS[setting].scaled(steps),
    ]
    log.info("run %s/%s-seed%d: %d steps", setting, model, seed, steps)
    return train_in_chunks(
        config_path(args, model), overrides, run_dir(args, setting, model, seed), steps, args.every
    )


def final_checkpoint(args: argparse.Namespace, data: Path, setting: str, model: str, seed: int):
    """The checkpoint of the run's last chunk (training what is missing)."""
    return list(train(args, data, setting, model, seed))[-1].checkpoint


def test_batch(
    data: Path,
    scenes: int,
    contexts: int,
    seed: int,
    context_sides: int = 0,
    targets: int = TARGETS,
) -> tuple[QueryBatch, list[int], list[ViewSplit]]:
    """Held-out hidden-face batch: the first ``scenes`` test scenes of the store that admit a
    split (:func:`split_views`, ``"hidden-face"``, rng ``(seed, scene)``) of ``contexts``
    context views and ``targets`` views of the unseen side. Returns the batch, the scenes'
    store indices and their splits."""
    test = open_split(data, "test")
    faces = store_faces(test)
    frames, poses, indices, splits = [], [], [], []
    for position, index in enumerate(test.indices):
        try:
            split = split_views(
                faces[index],
                "hidden-face",
                contexts,
                targets,
                np.random.default_rng([seed, int(index)]),
                context_sides,
            )
        except ValueError:
            continue
        f, p = test[(position, [*split.context.tolist(), *split.target.tolist()])]
        frames.append(f)
        poses.append(p)
        indices.append(int(index))
        splits.append(split)
        if len(indices) == scenes:
            break
    if not indices:
        raise ValueError(
            f"no test scene of {data} admits a hidden-face split of {contexts} context views "
            f"seeing {context_sides}+ sides and {targets} targets; generate more scenes"
        )
    tensors = collate_scenes(torch.stack(frames), torch.stack(poses), targets, test.encoder)
    return QueryBatch(*tensors), indices, splits


def one_scene(batch: QueryBatch, i: int) -> QueryBatch:
    """Scene ``i`` of ``batch`` as a batch of one."""
    return QueryBatch(*(getattr(batch, f.name)[i : i + 1] for f in fields(batch)))


def first_targets(batch: QueryBatch, n: int) -> QueryBatch:
    """``batch`` with only its first ``n`` targets."""
    return QueryBatch(
        batch.context_images,
        batch.context_viewpoints,
        batch.context_mask,
        batch.target_images[:, :n],
        batch.target_viewpoints[:, :n],
        batch.target_mask[:, :n],
    )


@torch.no_grad()
def elbo_terms(model: SceneModel, batch: QueryBatch, sigma: float, seed: int) -> ELBOTerms:
    """``model.elbo`` with the posterior noise drawn from torch seed ``seed`` (the global RNG
    restored afterwards). Per scene: ``nll`` sums the NLL of its targets; ``kl`` is one KL of the
    scene latent for CGQN and, for GQN (latents of its own per target), the sum of the targets'
    KLs, so ``nll + kl`` is the negative ELBO over all its targets."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model.elbo(batch, sigma)
