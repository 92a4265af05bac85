"""``gqn data`` CLI: generate (tiny), resume, info, show, errors."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image
from test_format import FakeFamily

from gqn.cli import data as cli_data
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
    names = set(cli_data._family_fields({"fake": FakeFamily}))
    assert names == {f.name for f in dataclasses.fields(FakeFamily)}


def test_real_families_registered():
    """The real families' parameters become options."""
    parser_help = cli_data._family_fields(cli_data._families())
    assert "image_size" in parser_help and "parts" in parser_help
