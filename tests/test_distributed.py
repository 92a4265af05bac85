"""``torchrun --nproc_per_node=2`` with gloo DDP on CPU: rank-0 outputs, ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml
from test_train import TINY

from gqn.train.checkpoint import find_latest, load_checkpoint

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import gc, sys, torch, torch.distributed as dist
    from gqn.train import distributed
    from gqn.train.config import load_run_config
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


def test_two_process_gloo_ddp(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            str(script),
            str(cfg),
            f"out_dir={run_dir}",
            "optim.max_steps=4",
            "log.checkpoint_every=2",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "RESULT status=finished step=4 ranks_agree=True" in proc.stdout
    state = load_checkpoint(find_latest(run_dir))
    assert state["step"] == 4 and len(state["rng_per_rank"]) == 2
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # rank 0 only
    assert rows[0]["images_per_s"] > 0
