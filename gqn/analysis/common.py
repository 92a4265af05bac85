"""What every analysis shares: the checkpoint's model with the store's held-out scenes
(:class:`Inputs`), the procedural family that made a store, in-memory scenes that
:func:`gqn.eval.evaluate.evaluate` reads like a store (:class:`FramesDataset`), and seeded prior
renderings from a representation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gqn.data.dataset import SceneDataset, open_split
from gqn.data.scenes import SceneFamily, make_family
from gqn.data.store import SceneStore
from gqn.eval.baselines import mean_image
from gqn.eval.evaluate import MEAN_IMAGE_SCENES
from gqn.models.base import SceneModel
from gqn.models.loading import load_model
from gqn.run_config import RunConfig
from gqn.viewpoint import check_viewpoint_kinds


@dataclass
class Inputs:
    """An analysis' inputs: the trained model (eval mode, CPU), its run config, the store and
    its held-out split (the run's ``test_fraction`` and ``split_seed``)."""

    analysis: str
    checkpoint: str
    model: SceneModel
    config: RunConfig
    data: Path
    test: SceneDataset

    @property
    def sigma(self) -> float:
        """The pixel sigma at the end of training (the ELBO terms are evaluated there)."""
        return self.config.optim.pixel_sigma().final

    def train_mean(self) -> torch.Tensor:
        """(3, s, s) mean training image (the mean-image baseline)."""
        frac, seed = self.config.data.test_fraction, self.config.data.split_seed
        return mean_image(open_split(self.data, "train", frac, seed), MEAN_IMAGE_SCENES)

    def family(self) -> tuple[SceneFamily, int]:
        """The procedural family and seed that made the store (scene i of the store is scene i
        of ``family.render_scenes(seed, ...)``)."""
        source = SceneStore(self.data).manifest.source
        if source.get("kind") != "procedural":
            raise ValueError(
                f"gqn analyze {self.analysis} renders variants of the store's scenes, so it needs "
                f"a store made by gqn data generate; {self.data} holds {source.get('kind')!r} data"
            )
        return make_family(source["family"], **source["params"]), int(source["seed"])


def open_inputs(
    analysis: str,
    checkpoint: str | os.PathLike,
    data: str | os.PathLike | None = None,
    camera: bool = True,
) -> Inputs:
    """Load the checkpoint (file or run directory) and the held-out split of ``data`` (default:
    the run's ``data.path``). ``camera``: the analysis needs a model of camera viewpoints. Bad
    input raises a one-line ValueError / FileNotFoundError naming the thing."""
    model, config = load_model(checkpoint)
    data = data if data is not None else config.data.path
    if data is None:
        raise ValueError(
            f"gqn analyze {analysis}: the run trained on freshly rendered scenes (no store); "
            "pass --data STORE"
        )
    if not Path(data).is_dir():
        raise FileNotFoundError(f"store {data} does not exist: pass --data STORE")
    test = open_split(data, "test", config.data.test_fraction, config.data.split_seed)
    check_viewpoint_kinds(config.model.viewpoint, test.encoder.kind, f"store {data}")
    if camera and config.model.viewpoint != "camera":
        raise ValueError(
            f"gqn analyze {analysis} does not apply to this checkpoint: it renders scenes from "
            f"camera poses, and the {config.model.name!r} model reads "
            f"{config.model.viewpoint!r} viewpoints"
        )
    size = test.store.image_size[0]
    if size != model.image_size:
        raise ValueError(
            f"store {data} has {size}x{size} images, the model expects "
            f"{model.image_size}x{model.image_size}: use the store the model trained on"
        )
    return Inputs(analysis, str(checkpoint), model, config, Path(data), test)


class FramesDataset:
    """Rendered scenes in memory, read like a :class:`SceneDataset` (``len``, ``views``,
    ``dataset[(i, views)]`` -> frames uint8 (m, H, W, 3), poses float32 (m, 5))."""

    def __init__(self, frames: np.ndarray, poses: np.ndarray):
        self.frames, self.poses = torch.from_numpy(frames), torch.from_numpy(poses)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def views(self) -> int:
        return int(self.frames.shape[1])

    def __getitem__(self, key: tuple[int, list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        i, views = key
        return self.frames[i, views], self.poses[i, views]


def require_scenes(analysis: str, dataset: SceneDataset, wanted: int, minimum: int) -> int:
    """The number of held-out scenes to use, min(wanted, available); ValueError when fewer
    than ``minimum`` are available or wanted."""
    n = min(wanted, len(dataset))
    if n < minimum:
        raise ValueError(
            f"gqn analyze {analysis} needs at least {minimum} held-out scenes, got {n} "
            f"({len(dataset)} in the store's test split): use a larger store or --scenes"
        )
    return n


def require_views(analysis: str, dataset: SceneDataset | FramesDataset, minimum: int) -> None:
    """ValueError when the scenes have fewer than ``minimum`` views."""
    if dataset.views < minimum:
        raise ValueError(
            f"gqn analyze {analysis} needs scenes of at least {minimum} views, the store has "
            f"{dataset.views}: use data with more views"
        )


def context_size(inputs: Inputs, wanted: int | None) -> int:
    """The number of context views K: ``wanted``, or the run's ``data.max_context`` (the
    largest K it trained with), at most V - 1; ValueError below 1."""
    views = inputs.test.views
    k = wanted if wanted is not None else min(inputs.config.data.max_context or views, views - 1)
    if k < 1:
        raise ValueError(f"gqn analyze {inputs.analysis}: --context must be >= 1, got {k}")
    return k


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error (n - 1 in the variance; 0 for a single value) of (n,) values."""
    n = values.numel()
    se = float(values.double().std() / n**0.5) if n > 1 else 0.0
    return float(values.double().mean()), se


@torch.no_grad()
def render(
    model: SceneModel, r: torch.Tensor, viewpoints: torch.Tensor, samples: int, seed: int
) -> torch.Tensor:
    """(b, S, n, c, s, s) prior mean images of the views ``viewpoints`` (b, n, d) of the scenes
    with representation r, the latents drawn from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return model.generate(r, viewpoints, samples, generator)


class NotApplicable(ValueError):
    """The analysis does not apply to this model (``gqn reproduce`` records the claim as such)."""


@torch.no_grad()
def represent(model: SceneModel, images: torch.Tensor, viewpoints: torch.Tensor) -> torch.Tensor:
    """r of each scene from all its given views, images (b, k, c, s, s), viewpoints (b, k, d),
    for analyses that embed or combine r; refused (:class:`NotApplicable`) for a model without
    a per-scene code (``SceneModel.scene_code``)."""
    if not model.scene_code:
        raise NotApplicable(
            f"this analysis embeds or combines r, one code per scene; model {model.name!r} keeps "
            "a per-view memory instead (docs/model.md): run it on a gqn, cgqn or multiscale model"
        )
    return model.represent(images, viewpoints)
