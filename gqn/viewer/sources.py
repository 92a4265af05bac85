"""What the viewer shows: a checkpoint's model and the scenes it renders, checked together.

The scenes are a split of a scene store, or one scene from a folder of the user's own images + a
poses file (as ``gqn sample`` takes them, :mod:`gqn.eval.inputs`). The viewer's camera is an
orbit camera, so the model must take camera viewpoints; the data must have the model's image size
and kind of viewpoint.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from gqn.data.dataset import open_split
from gqn.eval.inputs import dataset_scene, load_image_folder
from gqn.models.loading import load_model
from gqn.viewer.session import ViewerSession
from gqn.viewpoint import check_viewpoint_kinds


def open_session(
    checkpoint: str | os.PathLike,
    device: torch.device | str,
    data: str | os.PathLike | None = None,
    split: str = "test",
    images: str | os.PathLike | None = None,
    poses: str | os.PathLike | None = None,
) -> tuple[ViewerSession, str]:
    """The session over the scenes of ``data`` (a store's ``split``) or of ``images`` +
    ``poses`` (one scene), and a description of the source. ValueError / FileNotFoundError
    naming the problem when the checkpoint is missing or the data does not fit the model."""
    if (data is None) == (images is None):
        raise ValueError("give the scenes either as a store (data) or as images + poses")
    model, config = load_model(checkpoint, device=device)
    kind = config.model.viewpoint
    check_viewpoint_kinds(kind, "camera", "gqn view (an orbit camera)")
    size = model.image_size
    if images is not None:
        if poses is None:
            raise ValueError("a folder of images needs a poses file (--poses)")
        scene = load_image_folder(images, poses, size)
        return ViewerSession(model, lambda index: scene, 1), f"{Path(images).name}/ ({poses})"
    dataset = open_split(data, split, config.data.test_fraction, config.data.split_seed)
    check_viewpoint_kinds(kind, dataset.store.viewpoint, f"the store {data}")
    if tuple(dataset.store.image_size) != (size, size):
        h, w = dataset.store.image_size
        raise ValueError(
            f"the store {data} holds {w}x{h} images, the model needs {size}x{size}: "
            "use the store the model was trained on (or one generated at its size)"
        )
    if len(dataset) == 0:
        raise ValueError(f"the {split} split of {data} has no scenes; try --split all")
    what = f"{split} split of {data}"
    load = functools.partial(dataset_scene, dataset, what=what)
    return ViewerSession(model, load, len(dataset)), what
