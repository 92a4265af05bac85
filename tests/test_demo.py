"""A tiny end-to-end `gqn demo`: every stage, the report's sections, and reuse on rerun."""

import json
from pathlib import Path

from gqn.cli import main
from gqn.demo import DEFAULT_CONFIG, DemoSettings, config_summary
from gqn.run_config import load_run_config
from gqn.viz.demo_report import SECTIONS


def test_tiny_demo_end_to_end_and_resume(tmp_path, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text("model:\n  image_size: 32\ndevice: cpu\n")
    out = tmp_path / "demo"
    args = ["demo", "--tiny", "--out", str(out), "--config", str(config)]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    for section in SECTIONS:
        assert section in report
    assert "scene pool" not in report
    for name in ("context.png", "comparison.png", "samples.png", "orbit.gif", "loss_curves.png"):
        assert (out / "figures" / name).stat().st_size > 0
    assert (out / "eval" / "eval.json").exists() and (out / "run" / "metrics.jsonl").exists()
    stages = json.loads((out / "stages.json").read_text())["seconds"]
    assert set(stages) == {"data", "train", "eval", "sample", "report"}

    assert main(args) == 0  # rerun: every finished stage is reused
    report = (out / "report.md").read_text()
    for stage in ("data", "train", "eval", "sample"):
        assert f"| {stage} (reused) |" in report

    # outputs with no record of what they were made from (an older gqn, or a redo that was
    # interrupted) are redone, and so are those of a marker cut by a kill mid-write
    path = out / "eval" / "eval.json"
    (out / "eval" / "made_with.json").unlink()
    (out / "figures" / "made_with.json").write_text('{"checkpoint": ')
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "| eval (reused) |" not in report and "| sample (reused) |" not in report

    # other arguments redo the stages they change, and only those
    assert main([*args, "--samples", "3", "--frames", "4"]) == 0
    report = (out / "report.md").read_text()
    assert "| data (reused) |" in report and "| train (reused) |" in report
    assert "| eval (reused) |" not in report and "| sample (reused) |" not in report
    assert json.loads(path.read_text())["num_samples"] == 3
    assert main([*args, "--views", "4"]) == 2  # the stored scenes have 3 views
    assert "already holds a different dataset" in capsys.readouterr().err
    assert main([*args, "model.hidden_channels=12", "seed=3"]) == 2  # the run has other settings
    err = capsys.readouterr().err
    assert "model.hidden_channels: 8 != 12" in err and "seed: 0 != 3" in err
    assert "choose another --out" in err
    assert main([*args, "log.every=2", "accel.precision=fp32"]) == 0  # these change nothing
    assert "| train (reused) |" in (out / "report.md").read_text()
    (out / "eval" / "eval.json").unlink()  # a marker without its outputs is not trusted
    assert main(args) == 0
    assert "| eval (reused) |" not in (out / "report.md").read_text()


def test_default_config_is_found_from_any_directory_and_a_missing_one_is_named(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert DEFAULT_CONFIG.is_file()
    missing = tmp_path / "nope.yaml"
    assert main(["demo", "--tiny", "--out", str(tmp_path / "d"), "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--config" in err
    assert not (tmp_path / "d").exists()


def test_report_summary_names_a_scene_pool(tmp_path):
    settings = DemoSettings(scenes=100, views=15, config=Path("demo.yaml"))
    config = load_run_config(DEFAULT_CONFIG, ["data.pool_scenes=64", "data.pool_steps=2000"])
    summary = config_summary(config, tmp_path, settings)
    assert summary["optimisation"].endswith("; the first 2000 steps on only 64 scenes (scene pool)")
