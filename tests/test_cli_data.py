"""``gqn data`` CLI: generate (tiny), resume, info, show, errors."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image
from test_format import FakeFamily

from gqn.cli import data_cmd as cli_data
from gqn.cli import main


@pytest.fixture
def fake_families(monkeypatch):
    monkeypatch.setattr(cli_data, "_families", lambda: {"fake": FakeFamily})
    monkeypatch.setattr(cli_data, "_make_family", lambda name, **p: FakeFamily(**p))


def test_generate_info_show(tmp_path, fake_families, capsys):
    out = tmp_path / "d"
    argv = [
        "data",
        "generate",
        "fake",
        str(out),
        "--scenes",
        "6",
        "--size",
        "32",
        "--shard-size",
        "4",
    ]
    assert main(argv) == 0
    assert main(argv) == 0  # re-running the same command is a no-op resume
    assert main(["data", "info", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "scenes       6" in text and "32x32 png" in text and "verify       OK" in text
    sheet = tmp_path / "sheet.png"
    assert (
        main(["data", "show", str(out), "--scenes", "2", "--views", "3", "--out", str(sheet)]) == 0
    )
    assert Image.open(sheet).size == (2 + 3 * 34, 2 + 2 * 34)


def test_generate_refuses_other_params_and_unknown_param(tmp_path, fake_families, capsys):
    out = str(tmp_path / "d")
    assert main(["data", "generate", "fake", out, "--scenes", "2", "--size", "16"]) == 0
    assert main(["data", "generate", "fake", out, "--scenes", "2", "--size", "32"]) == 2
    assert "already holds a different dataset" in capsys.readouterr().err


def test_generate_with_workers_and_a_bad_worker_count(tmp_path, fake_families, capsys):
    out = str(tmp_path / "d")
    args = ["data", "generate", "fake", out, "--scenes", "4", "--shard-size", "2"]
    assert main([*args, "--workers", "0"]) == 2
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err
    assert main([*args, "--workers", "2"]) == 0
    assert "scenes       4" in capsys.readouterr().out


def test_info_verify_reports_corruption(tmp_path, fake_families, capsys):
    out = tmp_path / "d"
    assert main(["data", "generate", "fake", str(out), "--scenes", "2", "--size", "16"]) == 0
    shard = next(out.glob("*.gqns"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")
    assert main(["data", "info", str(out), "--verify"]) == 1
    assert "sha256 checksum mismatch" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "missing")]) == 2


def test_default_out_and_family_fields():
    assert (
        str(cli_data.default_out("shepard-metzler", {"parts": 5, "image_size": 64}, 0))
        == "data/shepard-metzler-parts5-size64"
    )
    names = set(cli_data._family_fields(FakeFamily))
    assert names == {f.name for f in dataclasses.fields(FakeFamily)}


def test_real_families_registered():
    """The real families' parameters become options."""
    families = cli_data._families()
    assert "parts" in cli_data._family_fields(families["shepard-metzler"])
    assert "image_size" in cli_data._family_fields(families["rooms"])


def test_out_may_follow_the_family_options(tmp_path, monkeypatch):
    """``gqn data generate shepard-metzler --parts 7 data/sm7``: the optional positional after
    the options is the output directory."""
    seen = {}
    monkeypatch.setattr(cli_data, "_generate", lambda args: seen.update(vars(args)) or 0)
    out = str(tmp_path / "sm7")
    argv = ["data", "generate", "shepard-metzler", "--parts", "7", out, "--scenes", "3"]
    assert main(argv) == 0
    assert seen["out"] == out and seen["param_parts"] == 7 and seen["scenes"] == 3


def test_each_family_help_lists_only_its_parameters(capsys):
    families = cli_data._families()
    for name, cls in families.items():
        with pytest.raises(SystemExit):
            main(["data", "generate", name, "--help"])
        text = capsys.readouterr().out
        own = set(cli_data._family_fields(cls))
        others = {p for c in families.values() for p in cli_data._family_fields(c)} - own
        for param in own:
            assert f"--{param.replace('_', '-')}" in text
        for param in others:
            assert f"--{param.replace('_', '-')} " not in text, (name, param)
