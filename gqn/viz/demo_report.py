"""The demo report: one Markdown file that links its figures (paths relative to the report).

:func:`write_report` takes everything as plain values (paths, the ``eval.json`` dict, timings),
so it can be exercised from fake inputs.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gqn.device import cpu_model_and_flags
from gqn.eval.evaluate import BASELINES
from gqn.viz.eval_report import elbo_table, metrics_table

SECTIONS = (
    "## Summary",
    "## Context views",
    "## Ground truth | posterior | prior",
    "## Orbit",
    "## Evaluation",
    "## Training curves",
    "## Wall time",
    "## Machine",
)


@dataclass
class ReportInputs:
    """What the report shows. Figure paths are files; ``eval_result`` is an ``eval.json`` dict;
    ``stage_seconds`` maps stage name -> wall seconds; ``reused`` names stages skipped because
    their output already existed; ``config`` is a short description of the run."""

    context_png: Path
    comparison_png: Path
    samples_png: Path
    orbit_gif: Path
    metrics_png: Path
    loss_png: Path
    eval_result: dict[str, Any]
    stage_seconds: dict[str, float]
    reused: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)


def machine_info() -> dict[str, Any]:
    """CPU model and count, OS, Python and torch versions, accelerator if any."""
    cpu = cpu_model_and_flags()[0] or platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """One line per K (first and last): SSIM and PSNR of the model methods vs the best baseline
    on each metric."""
    lines = []
    for row in (result["rows"][0], result["rows"][-1]):
        m = row["methods"]
        best = {key: max(BASELINES, key=lambda b, key=key: m[b][key]) for key in ("ssim", "psnr")}
        lines.append(
            f"- K = {row['k']}: SSIM reconstruction {m['reconstruction']['ssim']:.3f}, prior "
            f"sample {m['prior_sample']['ssim']:.3f}, prior mean {m['prior_mean']['ssim']:.3f}, "
            f"best-of-{result['num_samples']} {m['best_of_n']['ssim']:.3f} vs best baseline "
            f"({best['ssim']}) {m[best['ssim']]['ssim']:.3f}; PSNR "
            f"{m['reconstruction']['psnr']:.2f} / {m['prior_sample']['psnr']:.2f} / "
            f"{m['prior_mean']['psnr']:.2f} / {m['best_of_n']['psnr']:.2f} dB vs best baseline "
            f"({best['psnr']}) {m[best['psnr']]['psnr']:.2f} dB. Prior mean at "
            f"another view's pose (control): {m['prior_mean_other_pose']['psnr']:.2f} dB / SSIM "
            f"{m['prior_mean_other_pose']['ssim']:.3f}."
        )
    return lines


def write_report(inputs: ReportInputs, path: str | os.PathLike) -> Path:
    """Write the Markdown report to ``path`` (figures linked relative to it)."""
    path = Path(path)
    base = path.parent
    result = inputs.eval_result
    last = result["rows"][-1]["k"]
    ks = sorted({1, min(3, last), last})
    total = sum(inputs.stage_seconds.values())
    lines = [
        "# GQN demo report",
        "",
        "A small GQN trained on procedurally rendered Shepard-Metzler scenes and evaluated on "
        "held-out scenes against two baselines (nearest context view, mean training image).",
        "",
        SECTIONS[0],
        "",
        *summary_lines(result),
        f"- Total wall time {_minutes(total)}.",
        "",
        SECTIONS[1],
        "",
        "The context views of one held-out scene (the scene of the sample grid and the orbit):",
        "",
        f"![context views]({_rel(inputs.context_png, base)})",
        "",
        SECTIONS[2],
        "",
        "Held-out scenes, one per row: ground truth | posterior reconstruction | prior sample.",
        "",
        f"![ground truth, posterior, prior]({_rel(inputs.comparison_png, base)})",
        "",
        "Sample grid of the scene above: context views in the first row; then per query view its "
        "ground truth followed by prior samples.",
        "",
        f"![samples]({_rel(inputs.samples_png, base)})",
        "",
        SECTIONS[3],
        "",
        "The camera circling the scene at the data's radius and mean height; r computed once.",
        "",
        f"![orbit]({_rel(inputs.orbit_gif, base)})",
        "",
        SECTIONS[4],
        "",
        f"{result['num_scenes']} held-out scenes, one query each, {result['num_samples']} prior "
        f"samples per query; ELBO terms at sigma {result['sigma']:g}. The full table for every "
        "K is in `eval/eval.md`; settings in `docs/evaluation.md`.",
        "",
        metrics_table(result, ks),
        "",
        f"![metrics vs K]({_rel(inputs.metrics_png, base)})",
        "",
        elbo_table(result),
        "",
        "Longer training: the shipped weights `pretrained:sm-32-pixels` are this recipe "
        "trained to 8,000 steps; `gqn eval pretrained:sm-32-pixels --data <this run's data>` "
        "and `gqn sample pretrained:sm-32-pixels ...` show what more training gives on these "
        "scenes. `pretrained:sm-32-projective` reads the rays without the context pixels; "
        "`pretrained:sm-32` (8,000 steps) and `pretrained:sm-32-gpu` (437k query images on a "
        "GPU) are the paper's GQN, one r per scene, at the same size (docs/pretrained.md).",
        "",
        SECTIONS[5],
        "",
        f"![NLL, KL and reconstruction PSNR vs step]({_rel(inputs.loss_png, base)})",
        "",
        SECTIONS[6],
        "",
        "| stage | wall time |",
        "|---|---:|",
        *(
            f"| {name}{' (reused)' if name in inputs.reused else ''} | {_minutes(s)} |"
            for name, s in inputs.stage_seconds.items()
        ),
        f"| total | {_minutes(total)} |",
        "",
        SECTIONS[7],
        "",
        *(f"- {k}: {v}" for k, v in (inputs.machine or machine_info()).items()),
        "",
    ]
    if inputs.config:
        lines += ["## Configuration", "", *(f"- {k}: {v}" for k, v in inputs.config.items()), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
