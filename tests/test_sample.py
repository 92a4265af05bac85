"""gqn sample: grid PNG, orbit GIF, folder-of-images input and its errors."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from test_eval import make_checkpoint, make_store

from gqn.cli import main
from gqn.eval.inputs import load_image_folder, load_poses
from gqn.viz.orbit import orbit_poses


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    data = make_store(root / "data", scenes=6, views=5)
    return data, make_checkpoint(root / "run", data)


def write_folder(folder, n=3, size=32, poses=None, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            folder / f"view_{i:02d}{suffix}"
        )
    if poses is None:
        yaw = np.linspace(0, 2 * np.pi, n, endpoint=False)
        poses = np.stack([3 * np.cos(yaw), 3 * np.sin(yaw), np.full(n, 1.0), yaw, yaw * 0], 1)
    return poses


def test_orbit_poses_circle_at_data_radius():
    ctx = torch.tensor([[3.0, 0.0, 1.0, 0, 0], [0.0, -3.0, 1.0, 0, 0], [-3.0, 0.0, -1.0, 0, 0]])
    poses = orbit_poses(ctx, 8)
    assert poses.shape == (8, 5)
    assert torch.allclose(poses[:, :3].norm(dim=-1), torch.full((8,), math.sqrt(10)), atol=1e-5)
    assert torch.allclose(poses[:, 2], torch.full((8,), 1 / 3), atol=1e-5)
    # cameras look at the origin (yaw = atan2(y, -x))
    assert torch.allclose(poses[:, 3], torch.atan2(poses[:, 1], -poses[:, 0]), atol=1e-5)


def test_sample_from_dataset_writes_grid_and_gif(checkpoint, tmp_path):
    data, ckpt = checkpoint
    out = tmp_path / "s"
    rc = main(
        [
            "sample",
            str(ckpt),
            "--data",
            str(data),
            "--scene",
            "0",
            "--context",
            "2",
            "--queries",
            "2",
            "--samples",
            "3",
            "--frames",
            "5",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    grid = Image.open(out / "samples.png")
    # rows: context + 2 queries; cols: max(2 context, 1 truth + 3 samples) = 4; 32 px x 2 + pad 2
    assert grid.size == (2 + 4 * 66, 2 + 3 * 66)
    gif = Image.open(out / "orbit.gif")
    assert gif.n_frames == 5


def test_sample_from_image_folder(checkpoint, tmp_path):
    _, ckpt = checkpoint
    poses = write_folder(tmp_path / "imgs", n=3)
    np.save(tmp_path / "poses.npy", poses)
    out = tmp_path / "s"
    rc = main(
        [
            "sample",
            str(ckpt),
            "--images",
            str(tmp_path / "imgs"),
            "--poses",
            str(tmp_path / "poses.npy"),
            "--frames",
            "3",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert Image.open(out / "orbit.gif").n_frames == 3
    assert (out / "samples.png").exists()


def test_csv_poses_with_header(tmp_path):
    p = tmp_path / "poses.csv"
    p.write_text("x,y,z,yaw,pitch\n1,2,3,0.1,0.2\n4,5,6,0.3,0.4\n")
    assert np.allclose(load_poses(p), [[1, 2, 3, 0.1, 0.2], [4, 5, 6, 0.3, 0.4]])


@pytest.mark.parametrize(
    "case, message",
    [
        ("count", "3 images .* but 2 poses"),
        ("size", "is 16x16, the model needs 32x32"),
        ("nan", "NaN"),
        ("columns", "N x 5"),
        ("empty", "no PNG or JPEG"),
    ],
)
def test_image_folder_errors(tmp_path, case, message):
    folder = tmp_path / "imgs"
    poses = write_folder(folder, n=0 if case == "empty" else 3, size=16 if case == "size" else 32)
    if case == "count":
        poses = poses[:2]
    if case == "nan":
        poses[1, 2] = np.nan
    if case == "columns":
        poses = poses[:, :4]
    if case == "empty":
        poses = np.zeros((1, 5))
    np.savetxt(tmp_path / "poses.csv", poses, delimiter=",")
    with pytest.raises(ValueError, match=message):
        load_image_folder(folder, tmp_path / "poses.csv", 32)


def test_sample_cli_reports_bad_input(checkpoint, tmp_path, capsys):
    _, ckpt = checkpoint
    write_folder(tmp_path / "imgs", n=2)
    np.save(tmp_path / "poses.npy", np.zeros((3, 5)))
    rc = main(
        [
            "sample",
            str(ckpt),
            "--images",
            str(tmp_path / "imgs"),
            "--poses",
            str(tmp_path / "poses.npy"),
        ]
    )
    assert rc == 2 and "2 images" in capsys.readouterr().err
