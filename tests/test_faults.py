"""The fault sweep of issue 14, made permanent: bad input and damaged files through the CLI.

Each case asserts the exit code, a one-line message without a traceback, and that the user's
files are unchanged (hashed before and after). Fixtures are tiny and module-scoped.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_deepmind import make_scenes, write_tfrecord
from test_format import FakeFamily

from gqn import io as gqn_io
from gqn.cli import data_cmd as cli_data
from gqn.cli import main
from gqn.data.generate import generate_dataset
from gqn.data.manifest import MANIFEST
from gqn.models.loading import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
MODEL = {
    "image_size": 16,
    "representation": "pool",
    "r_channels": 8,
    "hidden_channels": 8,
    "canvas_channels": 8,
    "num_steps": 2,
}


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def store(root: Path, views: int = 4, scenes: int = 6) -> Path:
    return generate_dataset(
        FakeFamily(image_size=16, views=views), root, scenes, shard_scenes=3, progress=False
    )


def write_config(path: Path, data: Path, **data_keys) -> Path:
    cfg = {
        "model": MODEL,
        "data": {
            "path": str(data),
            "batch_size": 2,
            "num_workers": 0,
            "preview_scenes": 1,
            **data_keys,
        },
        "optim": {"max_steps": 2},
        "log": {
            "every": 1,
            "image_every": 100,
            "checkpoint_every": 1,
            "keep_last": 2,
            "progress": False,
            "tensorboard": False,
        },
        "device": "cpu",
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A 4-view and a 1-view store, a config, and a run with two checkpoints (steps 1, 2)."""
    root = tmp_path_factory.mktemp("faults")
    w = {"root": root, "store": store(root / "store"), "one": store(root / "one", views=1)}
    w["config"] = write_config(root / "tiny.yaml", w["store"])
    assert main(["train", "--config", str(w["config"]), "--out", str(root / "run")]) == 0
    w["run"] = root / "run"
    return w


def fails_cleanly(argv: list[str], capsys, code: int = 2) -> str:
    """Run the CLI; assert the exit code and a one-line message without a traceback."""
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("gqn ")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


# --- bad config values: refused at load, naming the key ------------------------------------------

BAD_OVERRIDES = [
    ("optim.lr_end=-0.01", "optim.lr_end"),
    ("optim.sigma_end=0", "optim.sigma_end"),
    ("optim.sigma_start=-1", "optim.sigma_start"),
    ("optim.betas=[1.0,0.9]", "optim.betas"),
    ("optim.eps=0", "optim.eps"),
    ("model.num_steps=[1,", "not valid YAML"),
    ("data.min_context=3 data.max_context=2", "data.min_context"),
    ("data.max_context=4", "4 view"),  # a step needs max_context + num_targets <= views
    ("data.num_targets=2 data.max_context=3", "data.num_targets=2"),
    ("data.min_context=-1", "data.min_context"),
    ("data.test_fraction=1.5", "data.test_fraction"),
    ("health.kl_growth_factor=0.5", "health.kl_growth_factor"),
    ("log.keep_last=1", "log.keep_last"),
    ("threads=0", "threads"),
    ("seed=-1", "seed"),
    ("model.num_stepz=3", "did you mean"),  # worked before issue 14: kept
]


@pytest.mark.parametrize(("override", "expect"), BAD_OVERRIDES, ids=[o for o, _ in BAD_OVERRIDES])
def test_bad_config_values_are_refused(world, tmp_path, capsys, override, expect):
    before = snapshot(world["store"])
    argv = ["train", "--config", str(world["config"]), "--out", str(tmp_path / "r")]
    line = fails_cleanly([*argv, *override.split()], capsys)
    assert expect in line
    assert snapshot(world["store"]) == before and not list_checkpoints(tmp_path / "r")


def test_a_store_with_too_few_views_names_the_keys_and_the_count(world, tmp_path, capsys):
    argv = ["train", "--config", str(world["config"]), "--out", str(tmp_path / "r")]
    line = fails_cleanly([*argv, f"data.path={world['one']}", "data.max_context=3"], capsys)
    assert "data.max_context=3" in line and "1 view(s)" in line


def test_config_paths_that_are_not_files(world, tmp_path, capsys):
    line = fails_cleanly(["train", "--config", str(tmp_path)], capsys)
    assert "is a directory" in line
    line = fails_cleanly(["train", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert "does not exist" in line


# --- bad command-line values ---------------------------------------------------------------------


@pytest.fixture
def fake_families(monkeypatch):
    monkeypatch.setattr(cli_data, "_families", lambda: {"fake": FakeFamily})
    monkeypatch.setattr(cli_data, "_make_family", lambda name, **p: FakeFamily(**p))


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--device", "tpu"], "--device 'tpu'"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--shard-size", "0"], "--shard-size"),
        (["--scenes", "0"], "--scenes"),
    ],
)
def test_generate_refuses_bad_options(tmp_path, fake_families, capsys, args, expect):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "d"
    assert expect in fails_cleanly(["data", "generate", "fake", str(out), *args], capsys)
    assert not out.exists()


def test_show_and_eval_refuse_what_the_store_cannot_give(world, tmp_path, capsys):
    before = snapshot(world["root"] / "one")
    line = fails_cleanly(["data", "show", str(world["store"]), "--first", "-3"], capsys)
    assert "--first" in line
    line = fails_cleanly(
        [
            "eval",
            str(world["run"]),
            "--data",
            str(world["one"]),
            "--split",
            "all",
            "--out",
            str(tmp_path / "e"),
        ],
        capsys,
    )
    assert "1 view per scene" in line
    assert snapshot(world["root"] / "one") == before


def test_convert_refusals(tmp_path, capsys):
    line = fails_cleanly(["data", "convert-deepmind", str(tmp_path / "nope"), "x"], capsys)
    assert "does not exist" in line
    src = tmp_path / "shepard_metzler_5_parts"
    src.mkdir()
    write_tfrecord(src / "a.tfrecord", make_scenes(0, 1, views=15))
    line = fails_cleanly(
        ["data", "convert-deepmind", str(src), str(tmp_path / "o"), "--shard-size", "0"], capsys
    )
    assert "--shard-size" in line


# --- damaged stores ------------------------------------------------------------------------------


def damaged_manifest(root: Path, change) -> Path:
    bad = root / "bad"
    bad.mkdir()
    for p in root.glob("store/*"):
        (bad / p.name).write_bytes(p.read_bytes())
    manifest = json.loads((bad / MANIFEST).read_text())
    (bad / MANIFEST).write_text(json.dumps(change(manifest)))
    return bad


def shard_scenes_as_text(m: dict) -> dict:
    m["shards"][0]["scenes"] = "3"
    return m


@pytest.mark.parametrize(
    ("change", "expect"),
    [(lambda m: [m], "not a gqn scene manifest"), (shard_scenes_as_text, "not an integer")],
    ids=["list", "string-count"],
)
def test_malformed_manifests(world, tmp_path, capsys, change, expect):
    (tmp_path / "store").symlink_to(world["store"])
    bad = damaged_manifest(tmp_path, change)
    before = snapshot(bad)
    assert expect in fails_cleanly(["data", "info", str(bad)], capsys)
    assert snapshot(bad) == before


def test_verify_checks_record_crcs_when_manifest_hashes_were_recomputed(world, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in world["store"].iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    shard = bad / "shard-00000.gqns"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF  # inside the last record's frame bytes
    shard.write_bytes(bytes(data))
    m = json.loads((bad / MANIFEST).read_text())
    m["shards"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    (bad / MANIFEST).write_text(json.dumps(m))
    assert main(["data", "info", str(bad), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "crc32c mismatch" in out and "1 bad shard" in out


# --- the writer never deletes what it did not make -----------------------------------------------

USER_FILES = {"notes.txt": b"mine", "old.tmp": b"keep", "backup.gqns": b"also mine"}


@pytest.mark.parametrize("command", ["generate", "convert-deepmind"])
def test_writers_refuse_a_directory_holding_user_files(tmp_path, fake_families, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    for name, data in USER_FILES.items():
        (out / name).write_bytes(data)
    before = snapshot(out)
    if command == "generate":
        argv = ["data", "generate", "fake", str(out), "--scenes", "2"]
    else:
        src = tmp_path / "shepard_metzler_5_parts"
        src.mkdir()
        write_tfrecord(src / "a.tfrecord", make_scenes(0, 1, views=15))
        argv = ["data", "convert-deepmind", str(src), str(out)]
    assert "not empty" in fails_cleanly(argv, capsys)
    assert snapshot(out) == before


def test_the_writer_resumes_its_own_unfinished_output(tmp_path, fake_families, capsys):
    out = tmp_path / "d"
    argv = ["data", "generate", "fake", str(out), "--shard-size", "2", "--scenes"]
    assert main([*argv, "2"]) == 0
    (out / ".shard-00001.gqns.0123456789ab.tmp").write_bytes(b"partial")  # a killed write
    assert main([*argv, "4"]) == 0
    assert "scenes       4" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "shard-00000.gqns",
        "shard-00001.gqns",
    ]


# --- checkpoints ---------------------------------------------------------------------------------


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def run_copy(world, tmp_path) -> Path:
    run = tmp_path / "run"
    for p in world["run"].rglob("*"):
        if p.is_file():
            (run / p.relative_to(world["run"])).parent.mkdir(parents=True, exist_ok=True)
            (run / p.relative_to(world["run"])).write_bytes(p.read_bytes())
    return run


def test_a_flipped_bit_in_a_checkpoint_is_refused_by_eval(world, run_copy, capsys):
    latest = list_checkpoints(run_copy)[-1]
    flip_a_bit(latest)
    before = snapshot(run_copy)
    argv = [
        "eval",
        str(latest),
        "--data",
        str(world["store"]),
        "--split",
        "all",
        "--scenes",
        "2",
        "--samples",
        "1",
        "--out",
        str(run_copy / "e"),
    ]
    line = fails_cleanly(argv, capsys)
    assert str(latest) in line and "checksum" in line
    assert snapshot(run_copy) == before


def test_resume_falls_back_to_the_previous_sound_checkpoint(world, run_copy, capsys, caplog):
    first, latest = list_checkpoints(run_copy)
    flip_a_bit(latest)
    corrupt = latest.read_bytes()
    argv = ["train", "--resume", "--out", str(run_copy), "optim.max_steps=3"]
    assert main(argv) == 0
    assert "trying the previous checkpoint" in caplog.text and str(latest) in caplog.text
    assert f"resuming from {first}" in caplog.text
    assert [p.name for p in list_checkpoints(run_copy)] == ["step_00000002.pt", "step_00000003.pt"]
    assert latest.read_bytes() != corrupt  # step 2 was trained again and rewritten


def test_a_full_disk_while_checkpointing_keeps_the_previous_one(
    world, run_copy, capsys, monkeypatch
):
    before = snapshot(run_copy / "checkpoints")
    real = gqn_io.atomic_write

    def full_disk(path):
        if str(path).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path)

    monkeypatch.setattr(gqn_io, "atomic_write", full_disk)
    line = fails_cleanly(["train", "--resume", "--out", str(run_copy), "optim.max_steps=3"], capsys)
    assert "disk full" in line and "step_00000003.pt" in line
    assert snapshot(run_copy / "checkpoints") == before


# --- a worker's data error ends the run (subprocess: Python's exit must not hang) ----------------


def test_a_corrupt_shard_read_by_a_worker_ends_the_run(world, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in world["store"].iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    flip_a_bit(bad / "shard-00001.gqns")  # not shard 0: the preview (main process) reads it
    cfg = write_config(tmp_path / "c.yaml", bad, num_workers=1, test_fraction=0.0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = str(tmp_path / "r")
    argv = [
        sys.executable,
        "-m",
        "gqn",
        "train",
        "--config",
        str(cfg),
        "--out",
        out,
        "optim.max_steps=50",
    ]
    # a hang raises TimeoutExpired (the limit is for a loaded machine, not a speed target)
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "sha256 checksum mismatch" in proc.stderr.splitlines()[-1]
