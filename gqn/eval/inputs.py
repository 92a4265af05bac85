"""Scenes to sample from: a scene of a stored dataset, or a folder of images + a poses file.

Both give images ``(n, 3, s, s)`` float in [0, 1] and raw poses ``(n, 5)`` = (x, y, z, yaw,
pitch) (see :mod:`gqn.viewpoint`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gqn.data.collate import frames_to_images
from gqn.data.dataset import SceneDataset, open_split
from gqn.viewpoint import POSE_DIM

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_dataset_scene(
    path: str | os.PathLike,
    index: int,
    split: str = "test",
    test_fraction: float = 0.1,
    split_seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scene ``index`` of ``split`` of the store at ``path``: images (V, 3, s, s), poses (V, 5)."""
    return dataset_scene(
        open_split(path, split, test_fraction, split_seed), index, f"{split} split of {path}"
    )


def dataset_scene(
    dataset: SceneDataset, index: int, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scene ``index`` of an open ``dataset`` (named ``what`` in the error): images (V, 3, s, s),
    poses (V, 5)."""
    if not 0 <= index < len(dataset):
        raise ValueError(f"scene {index} out of range: the {what} has {len(dataset)} scenes")
    frames, poses = dataset[index]
    return frames_to_images(frames), poses.float()


def load_poses(path: str | os.PathLike) -> np.ndarray:
    """float64 (N, 5) raw poses from ``.npy`` or ``.csv`` (comma-separated, optional header)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"poses file {path} does not exist")
    if path.suffix.lower() == ".npy":
        poses = np.load(path, allow_pickle=False)
    elif path.suffix.lower() == ".csv":
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        if lines and not _is_numeric_row(lines[0]):
            lines = lines[1:]  # header
        try:
            poses = np.array([[float(x) for x in ln.split(",")] for ln in lines])
        except ValueError as e:
            raise ValueError(f"{path}: not a numeric CSV of x,y,z,yaw,pitch rows ({e})") from e
    else:
        raise ValueError(f"{path}: poses must be a .csv or .npy file")
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
        raise ValueError(
            f"{path}: poses must be N x {POSE_DIM} (x, y, z, yaw, pitch), got shape {poses.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(poses).all(1))
    if bad.size:
        raise ValueError(f"{path}: pose row(s) {bad.tolist()[:10]} contain NaN or infinity")
    return poses


def _is_numeric_row(line: str) -> bool:
    try:
        [float(x) for x in line.split(",")]
    except ValueError:
        return False
    return True


def load_image_folder(
    images_dir: str | os.PathLike, poses_file: str | os.PathLike, image_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, s, s) from the PNG/JPEG files of ``images_dir`` in name order, with the
    poses (N, 5) of ``poses_file`` row by row. Every image must be ``image_size`` square."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no PNG or JPEG images")
    poses = load_poses(poses_file)
    if len(poses) != len(files):
        raise ValueError(
            f"{len(files)} images in {folder} but {len(poses)} poses in {poses_file}: "
            "need one pose row per image (images taken in file-name order)"
        )
    images = []
    for f in files:
        with Image.open(f) as im:
            if im.size != (image_size, image_size):
                raise ValueError(
                    f"{f}: image is {im.size[0]}x{im.size[1]}, the model needs "
                    f"{image_size}x{image_size}"
                )
            images.append(np.asarray(im.convert("RGB")))
    return frames_to_images(torch.from_numpy(np.stack(images))), torch.from_numpy(poses).float()
