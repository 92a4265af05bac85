"""``torchrun --nproc_per_node=2`` with gloo DDP on CPU: rank-0 outputs, ranks agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from test_train import TINY, losses

from gqn.models.loading import find_latest, load_checkpoint

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import gc, sys, torch, torch.distributed as dist
    from gqn.train import distributed
    from gqn.run_config import load_run_config
    from gqn.train.trainer import Trainer
    config = load_run_config(sys.argv[1], sys.argv[2:])
    info = distributed.init(config.device)
    trainer = Trainer(config, info, resume="--resume" in sys.argv)
    result = trainer.run()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(info.world_size)]
    dist.all_gather(gathered, flat)
    if info.is_main:
        same = all(torch.equal(gathered[0], g) for g in gathered)
        print(f"RESULT status={result.status} step={result.step} ranks_agree={same}")
    del trainer  # frees the DDP wrapper's hold on the process group before it is destroyed
    gc.collect()
    distributed.shutdown(info)
""")


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]


def torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [*TORCHRUN, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_two_process_gloo_ddp_and_resume_through_the_cli(tmp_path):
    """The ranks agree; rank 0 alone logs and checkpoints; and `torchrun -m gqn train`, stopped
    at step 3 and resumed, continues the curve of the uninterrupted 6-step run. Steps 5 and 6
    draw K = 0 context views (TINY has min_context 0), which leave the representation network
    out of the graph: DDP failed on them until it was told to find unused parameters."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    proc = torchrun(
        tmp_path, str(script), str(cfg), f"out_dir={run_dir}", "optim.max_steps=6",
        "log.checkpoint_every=2",
    )  # fmt: skip
    assert "RESULT status=finished step=6 ranks_agree=True" in proc.stdout
    state = load_checkpoint(find_latest(run_dir))
    assert state["step"] == 6 and len(state["rng_per_rank"]) == 2
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]  # rank 0 only
    assert rows[0]["images_per_s"] > 0

    cli = tmp_path / "cli"
    torchrun(tmp_path, "-m", "gqn", "train", "--config", str(cfg), "--out", str(cli),
             "optim.max_steps=3")  # fmt: skip
    torchrun(tmp_path, "-m", "gqn", "train", "--resume", "--out", str(cli), "optim.max_steps=6")
    assert losses(cli) == pytest.approx(losses(run_dir), rel=1e-6)
    assert sorted(losses(cli)) == [1, 2, 3, 4, 5, 6]
    assert len(load_checkpoint(find_latest(cli))["rng_per_rank"]) == 2


def test_sigterm_to_one_rank_stops_both_at_the_same_step(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "log": {**TINY["log"], "checkpoint_every": 1000}}))
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["-m", "gqn", "train", "--config", str(cfg), "--out", str(run_dir)]
    launcher = subprocess.Popen(
        [*TORCHRUN, *args, "optim.max_steps=100000"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not ((run_dir / "metrics.jsonl").exists() and len(losses(run_dir)) >= 2):
            assert launcher.poll() is None and time.monotonic() < deadline, "no training steps"
            time.sleep(0.2)
        ranks = subprocess.run(
            ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(ranks) == 2, ranks
        os.kill(int(max(ranks, key=int)), signal.SIGTERM)
        out, _ = launcher.communicate(timeout=90)
    finally:
        launcher.kill()
    assert launcher.returncode == 0, out[-3000:]
    assert "interrupted by" in out
    step = load_checkpoint(find_latest(run_dir))["step"]
    assert step >= 2 and max(losses(run_dir)) <= step
